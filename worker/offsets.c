/* offsets.c: per-partition offset tracking (SPEC §4.3). A ring buffer of delivered offsets in
 * ascending order with a done flag each; finished entries are popped from the front, and the
 * last popped offset + 1 is what may be stored. Finding an offset is a binary search. */
#include "offsets.h"

#include <stdlib.h>

void offtrack_init(struct offtrack *t)
{
    *t = (struct offtrack){.last_added = -1, .committable = -1};
}

void offtrack_free(struct offtrack *t)
{
    free(t->offs);
    free(t->done);
    offtrack_init(t);
}

static size_t slot(const struct offtrack *t, size_t i)
{
    return (t->head + i) % t->cap;
}

static int grow(struct offtrack *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    int64_t *offs = malloc(ncap * sizeof *offs);
    unsigned char *done = malloc(ncap);
    if (!offs || !done) {
        free(offs);
        free(done);
        return -1;
    }
    for (size_t i = 0; i < t->len; i++) {
        offs[i] = t->offs[slot(t, i)];
        done[i] = t->done[slot(t, i)];
    }
    free(t->offs);
    free(t->done);
    t->offs = offs;
    t->done = done;
    t->cap = ncap;
    t->head = 0;
    return 0;
}

int offtrack_add(struct offtrack *t, int64_t offset)
{
    if (offset < 0 || offset <= t->last_added)
        return -1;
    if (t->len == t->cap && grow(t) != 0)
        return -1;
    size_t s = slot(t, t->len);
    t->offs[s] = offset;
    t->done[s] = 0;
    t->len++;
    t->last_added = offset;
    return 0;
}

int offtrack_done(struct offtrack *t, int64_t offset)
{
    size_t lo = 0, hi = t->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->offs[slot(t, mid)] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == t->len || t->offs[slot(t, lo)] != offset || t->done[slot(t, lo)])
        return -1;
    t->done[slot(t, lo)] = 1;
    if (lo != 0)
        return 0;
    while (t->len > 0 && t->done[t->head]) {
        t->committable = t->offs[t->head] + 1;
        t->head = (t->head + 1) % t->cap;
        t->len--;
    }
    return 1;
}

int64_t offtrack_committable(const struct offtrack *t)
{
    return t->committable;
}

size_t offtrack_pending(const struct offtrack *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++)
        n += !t->done[slot(t, i)];
    return n;
}
