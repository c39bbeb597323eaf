/* offsets.h: per-partition offset tracking (SPEC §4.3), a pure data structure.
 *
 * A partition's messages are added in the order the consumer delivers them (ascending offsets)
 * and finish in any order. The tracker answers the one question the consumer asks: which offset
 * may be stored — the highest offset below which every message is done, plus one. It never
 * moves past a message that has not finished, so a crash replays everything unfinished
 * (at-least-once) and nothing finished before it that is still below the stored offset.
 *
 * Not thread-safe: the caller serialises access. */
#ifndef VMH_OFFSETS_H
#define VMH_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct offtrack {
    int64_t *offs;       /* ring buffer of unfinished-or-not-yet-popped offsets, ascending */
    unsigned char *done; /* parallel: 1 once finished */
    size_t head, len, cap;
    int64_t last_added;  /* -1 before the first add */
    int64_t committable; /* highest contiguous done + 1; -1 while nothing is done */
};

void offtrack_init(struct offtrack *t);
void offtrack_free(struct offtrack *t);

/* Tracks a delivered offset. 0, or -1 if the offset is not above every earlier one (a replay
 * the caller handles untracked) or on out of memory. */
int offtrack_add(struct offtrack *t, int64_t offset);

/* Marks a tracked offset finished. 1 if the committable offset advanced, 0 if not, -1 if the
 * offset is not tracked (unknown or already finished and popped). */
int offtrack_done(struct offtrack *t, int64_t offset);

/* The offset to store (next to consume), or -1 while nothing can be stored. */
int64_t offtrack_committable(const struct offtrack *t);

/* Offsets added and not finished. */
size_t offtrack_pending(const struct offtrack *t);

#endif
