/* links.h: the old name of store.h, kept only for tests/faults/fault_matrix.c (being worked on at
 * the same time); everything new includes store.h. Remove once fault_matrix.c calls
 * store_resolve_link / store_resolve_create itself. */
#ifndef VMH_LINKS_H
#define VMH_LINKS_H

#include "store.h"

static inline int links_resolve_link(struct redis_client *c, const char *id, long long betnr,
                                     char *err, size_t errlen)
{
    return store_resolve_link(c, id, betnr, err, errlen);
}

static inline int links_resolve_create(struct redis_client *c, const char *id, char *err,
                                       size_t errlen)
{
    return store_resolve_create(c, id, err, errlen);
}

#endif
