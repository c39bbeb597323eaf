/* syncfields.h: the one owner of the EspoCRM CBeteiligte attributes that only the sync writes
 * (SPEC §6), with the EspoCRM field type each must have: the worker's start-up metadata check,
 * the producer's echo filter (SPEC §3.1) and the writers of the final PUT all use this table. */
#ifndef VMH_SYNCFIELDS_H
#define VMH_SYNCFIELDS_H

#include <stdbool.h>
#include <stddef.h>

struct syncfield {
    const char *name; /* CBeteiligte attribute */
    const char *type; /* EspoCRM field type (entityDefs.CBeteiligte.fields.<name>.type) */
};

#define SYNCFIELDS_N 10
extern const struct syncfield syncfields[SYNCFIELDS_N];

/* Whether attr is one only the sync writes: a §6 sync field, or an attribute EspoCRM sets on
 * every save (id, versionNumber, modifiedAt, modifiedById, modifiedByName). A webhook record
 * that carries nothing else is the sync's own write coming back (SPEC §3.1). */
bool syncfields_sync_only(const char *attr);

#endif
