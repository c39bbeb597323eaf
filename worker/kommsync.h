/* kommsync.h: the Kommunikation part of one run (SPEC §5.4): reads both sides' entries out of
 * the EspoCRM entity and the Advoware record, asks the planner (komm.h), runs the Advoware
 * calls, and hands the EspoCRM side back as attributes for the run's final PUT (no EspoCRM
 * call of its own).
 *
 * An EspoCRM change that has an Advoware half (Var4: the marker write; Var6: the new marker)
 * is only written when that half succeeded, so a failed call leaves both sides as they were
 * and the retry plans the same step again. The hash is written only when every call
 * succeeded. Entries EspoCRM cannot take are reported (ksync_skipped), not sent. */
#ifndef VMH_KOMMSYNC_H
#define VMH_KOMMSYNC_H

#include "advo.h"
#include "komm.h"
#include "metrics.h"

#include <jansson.h>
#include <stdbool.h>

struct ksync_in {
    const json_t *entity;    /* the EspoCRM GET: phoneNumberData, emailAddressData, hash */
    const json_t *advo_list; /* the Advoware record's kommunikation[]; NULL: none yet (create);
                                an update whose record lacks the list (or has no array) plans
                                nothing: missing is not empty */
    bool create;             /* a CREATE: initial whatever the entity says */
    bool espo_changed;
    enum komm_dir dir;
    /* The entity's phone types (EspoCRM metadata phoneNumber.typeList and defaultType); NULL/0:
     * the Company list (Office, Mobile, Fax, Other; default Office). Copied by ksync_new. */
    const char *const *phone_types;
    size_t nphone_types;
    const char *default_type;
    /* The baseline's "komm" array (SPEC §5.2): NULL when the baseline has none (the markers
     * decide, §5.4 as written). ksync keeps a reference. */
    const json_t *base_komm;
};

struct ksync;

/* Reads the entries and plans (when the skip rule allows). NULL when out of memory. */
struct ksync *ksync_new(const struct ksync_in *in);
void ksync_free(struct ksync *ks);

/* Whether the plan writes to Advoware. */
bool ksync_writes(const struct ksync *ks);
/* Whether the skip rule let the planner run. */
bool ksync_planned(const struct ksync *ks);
/* What the planner was given and what it planned (vmhctl status shows them entry by entry),
 * owned by ks. The plan is empty when the skip rule left nothing to plan. */
const struct komm_in *ksync_input(const struct ksync *ks);
const struct komm_plan *ksync_plan(const struct ksync *ks);
/* Validation of the values the plan writes to Advoware. 0, or -1 with msg. */
int ksync_validate(const struct ksync *ks, char *msg, size_t msglen);

/* Runs the Advoware actions in order (a call that gets no answer stops the rest). 0 when all
 * succeeded; -1 with msg ("Var1: 2 succeeded, Var5: 1 failed (503)") and *transient (false
 * only when every failure was a client error such as 400). */
int ksync_run(struct ksync *ks, struct advo *a, long long betnr, bool *transient, char *msg,
              size_t msglen);

/* Adds the EspoCRM side to put: phoneNumberData / emailAddressData when they change, and
 * kommunikationHash when every action succeeded, nothing was deferred to a later run, and it
 * differs from the stored one. */
void ksync_fill_put(const struct ksync *ks, json_t *put);

/* The next baseline's "komm" (SPEC §5.2): what both systems hold once the run's actions all
 * succeeded, [{"id","kz","value","espo"}], each value as EspoCRM holds it. When nothing was
 * planned: the stored one (NULL if none). NULL too after a failed action (the baseline then
 * does not move). New reference. */
json_t *ksync_baseline(const struct ksync *ks);

/* This run's tentative entries for the write-ahead baseline (merge.h): entries whose Advoware
 * write makes them both systems' value (in sync, Match, Var1, Var5, a revert) with "prev" (the
 * baseline's entry, or null), slots it makes ("removed"), POSTs (id 0). Entries both systems
 * already hold without a write come without "prev". NULL when nothing was planned. New
 * reference. */
json_t *ksync_tentative(const struct ksync *ks);

/* The entries both systems held before the run: the stored baseline's "komm"; without one (the
 * markers decide, SPEC §5.4), those the markers name, [{"id","kz","value","espo"}] as the
 * markers say EspoCRM holds them. The write-ahead baseline of a run without a stored "komm" is
 * made from it: a marker this run writes whose EspoCRM half never lands (a Var4, a Var6) must
 * not decide the next run. NULL for a create. Borrowed. */
const json_t *ksync_prior(const struct ksync *ks);

/* The i-th conflict notification (SPEC §5.2: the same entry changed on both sides, EspoCRM
 * won; the text names Advoware's value); NULL past the end. */
const char *ksync_conflict(const struct ksync *ks, size_t i);

/* Counts the run's Advoware calls in m (a counter labelled var, result = ok|failed). */
void ksync_count(const struct ksync *ks, struct metric *m);

/* The i-th notification text the plan asks for (type changes); NULL past the end. */
const char *ksync_note(const struct ksync *ks, size_t i);

/* The i-th Advoware entry the plan did not take over into EspoCRM, as a text for the user
 * ("Telefonnummer '0511/ab' aus Advoware wurde nicht übernommen: keine gültige
 * Telefonnummer"); NULL past the end. Such an entry stays as it is in Advoware and is no
 * failure: the hash is stored as usual, so an unchanged party is not planned again. Owned by
 * ks. */
const char *ksync_skipped(const struct ksync *ks, size_t i);

#endif
