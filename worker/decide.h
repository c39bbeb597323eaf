/* decide.h: what the next run of a party decides, computed purely (SPEC §5.2, §5.3, §5.4): from
 * the EspoCRM entity, the Advoware record and the EspoCRM-pending mark, the three-way merge of
 * the 8 fields against the baseline (or the fallback without one) and the Kommunikation plan,
 * exactly as the run's update path derives them, without any call. vmhctl status shows the
 * result field by field and entry by entry.
 *
 * A struct decide owns what it holds (decide_free). The inputs must outlive it: the plan points
 * into the entity and the record. */
#ifndef VMH_DECIDE_H
#define VMH_DECIDE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kommsync.h"
#include "merge.h"

struct decide_in {
    const json_t *entity;     /* the EspoCRM GET */
    const json_t *advo;       /* the Advoware record (GET Beteiligte); NULL: a create */
    bool espo_pending;        /* vmh:espo_pending (store_pending_get): a failed run could not
                                 push EspoCRM changes; read only for a party neither clean, dirty
                                 nor pending_sync, as the run does */
    const char *sync_user_id; /* EspoCRM's sync user (preflight), NULL if unknown */
    /* The entity's phone types (preflight); NULL/0: the Company list. */
    const char *const *phone_types;
    size_t nphone_types;
    const char *default_type;
    /* The baseline to decide with (the run's: the entity's, else what a create posted, resolved
     * with a write-ahead baseline); NULL: advowareSyncBaseline parsed from the entity. */
    const json_t *baseline;
};

struct decide {
    bool create;              /* no record: the run POSTs (no merge) */
    struct merge_result m;    /* the 8 fields (not for a create) */
    struct merge_fallback fb; /* each side changed as a whole: decides without a baseline */
    bool espo_changed;        /* the Kommunikation's "EspoCRM changed" (SPEC §5.4) */
    json_t *baseline;         /* advowareSyncBaseline parsed; NULL when missing or unreadable */
    struct ksync *ks;         /* the Kommunikation plan */
};

/* The key of an earlier run's write-ahead baseline (store_ahead_get): the MD5 hex of the
 * entity's advowareSyncBaseline text (empty when it has none). */
void decide_based_on(const json_t *entity, char out[33]);

/* The baseline a party's next update run decides with (SPEC §5.2): advowareSyncBaseline; without
 * one, what the create POSTed when the party's link (store.h; NULL: none) is of the same betNr
 * (or EspoCRM has none yet): the create's final PUT did not happen, a failure's status write may
 * have carried its betnr. An earlier run's write-ahead baseline (ahead, store_ahead_get under
 * decide_based_on; NULL: none) resolved against Advoware as it is now (advo) replaces it
 * (merge.h). New reference, or NULL when there is none (the fallback decides); *from_ahead tells
 * whether ahead was used. The run and vmhctl status both take their baseline from here. */
json_t *decide_baseline(const json_t *entity, const json_t *link, const json_t *ahead,
                        const json_t *advo, bool *from_ahead);

/* Decides. 0, or -1 when out of memory (out is then empty). */
int decide_make(const struct decide_in *in, struct decide *out);
void decide_free(struct decide *d);

#endif
