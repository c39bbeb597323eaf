/* merge.h: the three-way merge of the Stammdaten (SPEC §5.2), pure functions: per field, what
 * EspoCRM holds now (E), what Advoware holds now (A, in EspoCRM's form) and what both agreed on
 * after the last successful run (B, the baseline) decide whether the field is in sync, pushed to
 * Advoware, pulled into EspoCRM, or a conflict EspoCRM wins. Without a baseline the fallback rule
 * of §5.2 decides once, from whether each side changed as a whole. Also the baseline's JSON codec
 * (advowareSyncBaseline) and the conflict notification text.
 *
 * Nothing here depends on a clock or on how long a write took: values decide. */
#ifndef VMH_MERGE_H
#define VMH_MERGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mapper.h"

enum merge_action { MERGE_IN_SYNC, MERGE_PUSH, MERGE_PULL, MERGE_CONFLICT };

/* Cases for metrics and logs (SPEC §5.2). */
enum merge_case {
    MCASE_NO_CHANGE,
    MCASE_ESPOCRM_NEWER,
    MCASE_ADVOWARE_NEWER,
    MCASE_MERGED,
    MCASE_CONFLICT
};

struct merge_field {
    const char *name; /* EspoCRM attribute (map_fields[i].espo) */
    enum merge_action action;
    char *espo, *advo; /* the values compared (EspoCRM form; NULL = empty), malloc'd */
    char *base;        /* the baseline's value; NULL = empty or no baseline */
};

struct merge_result {
    struct merge_field f[MAP_NFIELDS];
    enum merge_case mcase;
    size_t npush, npull, nconflict;
    bool had_baseline;
};

/* How each side changed as a whole, for the fallback without a baseline (SPEC §5.2): Advoware
 * changed if its rowId differs from advowareRowId (or geaendertAm is newer when a rowId is
 * missing), EspoCRM changed if the party is dirty or pending_sync. */
struct merge_fallback {
    bool espo_changed, advo_changed;
};

/* Decides every field. entity: the EspoCRM GET; advo: the Advoware record; base_fields: the
 * baseline's "fields" object, or NULL when there is none (then fb decides). 0, or -1 when out of
 * memory (out is then freed). Free with merge_result_free(). */
int merge_fields(const json_t *entity, const json_t *advo, const json_t *base_fields,
                 const struct merge_fallback *fb, struct merge_result *out);
void merge_result_free(struct merge_result *r);

/* "no_change", "espocrm_newer", "advoware_newer", "merged", "conflict". */
const char *merge_case_name(enum merge_case c);
const char *merge_action_name(enum merge_action a); /* "in sync", "push", "pull", "conflict" */

/* The EspoCRM attributes the run pulls (MERGE_PULL fields with Advoware's value; JSON null
 * clears, except name). New reference; NULL on out of memory. */
json_t *merge_pull_attrs(const struct merge_result *r);

/* Whether Advoware needs a PUT (a push or a conflict), and its body: all 8 fields of the merged
 * state (EspoCRM's values, with the pulled fields at Advoware's value), as map_to_advo() sends
 * them. New reference; NULL on out of memory or a bad date (validate first). */
bool merge_needs_push(const struct merge_result *r);
json_t *merge_advo_body(const struct merge_result *r);

/* The 8 fields of an EspoCRM entity in EspoCRM's form (empty = null): what a create posted, the
 * baseline of a new party. New reference. */
json_t *merge_fields_of(const json_t *entity);

/* The fields both systems agree on after the run (the merged state, EspoCRM's form): the
 * baseline's "fields". New reference. */
json_t *merge_agreed_fields(const struct merge_result *r);

/* The conflict notification (SPEC §5.2): "Konflikt gelöst: EspoCRM-Daten wurden übernommen
 * (vorname: Advoware hatte 'Max'; titel: Advoware hatte '')". buf is "" when no conflict. */
void merge_conflict_text(const struct merge_result *r, char *buf, size_t len);

/* ---- the baseline: advowareSyncBaseline (SPEC §5.2, §6) ---------------------------------- */

/* Parses the stored text. The object (new reference) when it is a baseline of version 1 with a
 * "fields" object; NULL when missing, unreadable or of another version (the fallback decides). */
json_t *merge_baseline_parse(const char *text);

/* The text to store: {"v":1,"fields":fields,"komm":komm,"rowId":rowid,"kommHash":komm_hash};
 * without komm (NULL: the entries both hold are not known) the key is left out, and the next
 * run's Kommunikation falls back to the markers (SPEC §5.4). malloc'd (compact, keys sorted); NULL
 * on out of memory. */
char *merge_baseline_format(const json_t *fields, const json_t *komm, const char *rowid,
                            const char *komm_hash);

/* ---- the write-ahead baseline (SPEC §5.3: nothing lost on any failure) ------------------
 *
 * Before its first Advoware write a run stores what the baseline becomes once that write
 * landed ("pending", in Redis by store.h): the baseline it started from, with each item it is
 * about to write marked tentative — the new value and "prev", the value before. The final PUT
 * carries the real baseline; when it fails (or the process dies), the next run resolves the
 * pending one against what Advoware holds now: a tentative item Advoware holds landed (both
 * systems held it), else it did not (prev stands). So a write whose answer was lost, a 409 after
 * the push, or a person's edit before the retry, is never mistaken for an edit in Advoware.
 *
 * Format: {"v":1,"fields":{...},"prev":{<field>:<old value or null>},"komm":[entry...]}; an
 * entry {"id","kz","value","espo"} may carry "prev" (the entry before, or null: it did not
 * exist; id 0: a POST whose id is not known yet) or "removed":true (the entry becomes a slot). */

/* The pending baseline of a run about to write: base (the baseline the run decided with; its
 * "komm" may be missing), fields (the 8 fields both systems hold once the push landed: EspoCRM's
 * values), komm (this run's tentative entries as above, or NULL when it writes none). New
 * reference; NULL on out of memory. */
json_t *merge_pending_make(const json_t *base, const json_t *fields, const json_t *komm);
/* The baseline to decide with, from pending and the Advoware record advo as it is now. New
 * reference; NULL on out of memory or a pending that is no baseline. */
json_t *merge_pending_resolve(const json_t *pending, const json_t *advo);

#endif
