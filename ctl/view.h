/* view.h: vmhctl status as a person reads it (SPEC §11), pure functions: the merge of SPEC §5.2
 * field by field and the Kommunikation plan of §5.4 entry by entry — what EspoCRM, Advoware and
 * the baseline hold and what the next run would do — as JSON rows, and a status document
 * rendered as text. cmd_status.c gathers the inputs; this file only formats.
 *
 * Every function returning json_t * returns a new reference (NULL when out of memory). */
#ifndef VMH_VIEW_H
#define VMH_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "komm.h"
#include "merge.h"

/* "in sync", "push → Advoware", "pull → EspoCRM", "conflict: EspoCRM wins". */
const char *view_field_action(enum merge_action a);

/* [{"field","espocrm","advoware","baseline","action"}], one per Stammdaten field (null = empty;
 * baseline null also when there is none). */
json_t *view_fields(const struct merge_result *m);

/* [{"entry","espocrm","advoware","baseline","var","action"}]: one row per Advoware entry (entry
 * "TelGesch #17": its kommKz name and id), then one per EspoCRM item no entry holds (entry "phone
 * Office" or "e-mail"). var: "Var1".."Var6", "Match", "skip", "conflict", or null when nothing is
 * to do; action says it for a person ("Var6: changed in Advoware → EspoCRM", "in sync", ...).
 * baseline: the baseline's value of the entry (by id) when in->has_base, else the value of its
 * marker. planned: whether the skip rule let the planner run (else plan is empty and equal values
 * are shown as in sync). */
json_t *view_komm(const struct komm_in *in, const struct komm_plan *plan, bool planned);

/* Writes the status document of cmd_status.c for a person: the status fields, lock, link, marks,
 * then the field and entry tables and the next run. Control characters in values are shown as
 * '?', long values are cut. */
void view_status_text(FILE *out, const json_t *doc);

/* A table: rows (objects) with the given columns (keys) and headers; null shows as "-". */
void view_table(FILE *out, const json_t *rows, const char *const *keys, const char *const *headers,
                size_t ncols);

#endif
