/* test_offsets.c: the per-partition offset tracker (worker/offsets.c, SPEC §4.3): a table of
 * operation sequences with the expected answer and committable offset after each step, then a
 * randomised run of 10 000 offsets checked against a reference model after every step. */
#include "offsets.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum op { END = 0, ADD, DONE };

struct step {
    enum op op;
    int64_t offset;
    int rc;              /* expected return */
    int64_t committable; /* expected afterwards */
};

struct scase {
    const char *name;
    struct step steps[16];
};

static const struct scase cases[] = {
    {"nothing done", {{ADD, 0, 0, -1}, {ADD, 1, 0, -1}}},
    {"in order", {{ADD, 0, 0, -1}, {ADD, 1, 0, -1}, {DONE, 0, 1, 1}, {DONE, 1, 1, 2}}},
    {"out of order: a later offset waits for the earlier",
     {{ADD, 3, 0, -1},
      {ADD, 4, 0, -1},
      {ADD, 5, 0, -1},
      {DONE, 5, 0, -1},
      {DONE, 4, 0, -1},
      {DONE, 3, 1, 6}}},
    {"slow head, fast tail",
     {{ADD, 0, 0, -1},
      {ADD, 1, 0, -1},
      {ADD, 2, 0, -1},
      {DONE, 0, 1, 1},
      {DONE, 2, 0, 1},
      {DONE, 1, 1, 3}}},
    {"gaps (compacted topic): last finished + 1",
     {{ADD, 10, 0, -1},
      {ADD, 12, 0, -1},
      {ADD, 15, 0, -1},
      {DONE, 10, 1, 11},
      {DONE, 15, 0, 11},
      {DONE, 12, 1, 16}}},
    {"unknown and repeated done",
     {{ADD, 7, 0, -1}, {DONE, 8, -1, -1}, {DONE, 7, 1, 8}, {DONE, 7, -1, 8}, {DONE, 6, -1, 8}}},
    {"an offset not above the last added is refused",
     {{ADD, 5, 0, -1},
      {ADD, 5, -1, -1},
      {ADD, 4, -1, -1},
      {ADD, -1, -1, -1},
      {DONE, 5, 1, 6},
      {ADD, 5, -1, 6},
      {ADD, 6, 0, 6}}},
    {"empty again, then more",
     {{ADD, 0, 0, -1},
      {DONE, 0, 1, 1},
      {ADD, 1, 0, 1},
      {ADD, 2, 0, 1},
      {DONE, 2, 0, 1},
      {DONE, 1, 1, 3}}},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct offtrack t;
        offtrack_init(&t);
        for (const struct step *s = cases[c].steps; s->op != END; s++) {
            int rc = s->op == ADD ? offtrack_add(&t, s->offset) : offtrack_done(&t, s->offset);
            if (rc != s->rc || offtrack_committable(&t) != s->committable)
                fail_msg("case \"%s\", step %s %lld: rc %d (want %d), committable %lld (want %lld)",
                         cases[c].name, s->op == ADD ? "add" : "done", (long long)s->offset, rc,
                         s->rc, (long long)offtrack_committable(&t), (long long)s->committable);
        }
        offtrack_free(&t);
    }
}

static void test_pending(void **state)
{
    (void)state;
    struct offtrack t;
    offtrack_init(&t);
    assert_int_equal(offtrack_pending(&t), 0);
    for (int64_t o = 0; o < 5; o++)
        assert_int_equal(offtrack_add(&t, o), 0);
    assert_int_equal(offtrack_pending(&t), 5);
    assert_int_equal(offtrack_done(&t, 3), 0);
    assert_int_equal(offtrack_pending(&t), 4);
    assert_int_equal(offtrack_done(&t, 0), 1);
    assert_int_equal(offtrack_pending(&t), 3);
    offtrack_free(&t);
}

/* The ring wraps: adds and dones interleaved so the head moves around the buffer many times
 * while a few offsets stay in flight. */
static void test_ring_wraps(void **state)
{
    (void)state;
    struct offtrack t;
    offtrack_init(&t);
    int64_t next = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(offtrack_add(&t, next++), 0);
    for (int64_t o = 0; o < 5000; o++) {
        assert_int_equal(offtrack_done(&t, o), 1);
        assert_int_equal(offtrack_committable(&t), o + 1);
        assert_int_equal(offtrack_add(&t, next++), 0);
        assert_int_equal(offtrack_pending(&t), 10);
    }
    offtrack_free(&t);
}

/* 10 000 offsets (with gaps) finished in a random order, checked after every step against the
 * model: committable = the first unfinished offset (or the last + 1 when all are finished). */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { N = 10000 };
    static int64_t offs[N];
    static size_t order[N];
    static bool fin[N];
    unsigned seed = 12345;
    struct offtrack t;
    offtrack_init(&t);
    int64_t o = 0;
    for (size_t i = 0; i < N; i++) {
        o += 1 + (rand_r(&seed) % 4 == 0 ? rand_r(&seed) % 5 : 0);
        offs[i] = o;
        order[i] = i;
        fin[i] = false;
        assert_int_equal(offtrack_add(&t, o), 0);
    }
    for (size_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)rand_r(&seed) % (i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    size_t first = 0;
    for (size_t k = 0; k < N; k++) {
        size_t i = order[k];
        int rc = offtrack_done(&t, offs[i]);
        fin[i] = true;
        size_t before = first;
        while (first < N && fin[first])
            first++;
        assert_int_equal(rc, first != before ? 1 : 0);
        int64_t want = first == 0 ? -1 : offs[first - 1] + 1;
        assert_int_equal(offtrack_committable(&t), want);
        assert_int_equal(offtrack_pending(&t), N - k - 1);
    }
    offtrack_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_ring_wraps),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
