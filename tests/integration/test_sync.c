/* test_sync.c: the Stammdaten sync end to end (SPEC §5.1–§5.3, §5.5, §5.6) on the full stack
 * of sync_stack.h. Each test acts as the outside world does — a UI user in EspoCRM, an
 * Advoware user, a cron message — and checks both simulators' final state and the exact API
 * calls from their /_sim/stats. */
#include "harness.h"
#include "sync_stack.h"
#include "msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_create(void **state)
{
    (void)state;
    struct ss_calls before;
    ss_snapshot(&before);
    char id[80];
    ss_ui_create("{\"name\":\"Mustermann\",\"vorname\":\"Max\",\"rechtsform\":\"GmbH\","
                 "\"dateOfBirth\":\"1980-05-17\",\"assignedUserId\":\"u-anna\"}",
                 id, sizeof id);
    json_t *e = ss_wait_status(id, "clean", 0);
    long long betnr = json_integer_value(json_object_get(e, "betnr"));
    assert_true(betnr > 0);
    assert_true(ss_str(e, "advowareRowId")[0] != '\0');
    assert_true(ss_str(e, "advowareLastSync")[0] != '\0');
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "name"), "Mustermann");
    assert_string_equal(ss_str(a, "vorname"), "Max");
    assert_string_equal(ss_str(a, "rechtsform"), "GmbH");
    assert_string_equal(ss_str(a, "geburtsdatum"), "1980-05-17T00:00:00");
    assert_string_equal(ss_str(a, "rowId"), ss_str(e, "advowareRowId"));
    json_decref(a);
    json_decref(e);
    /* SPEC §5.3 budget: EspoCRM GET, Advoware POST, EspoCRM PUT */
    ss_expect_calls(&before, (struct ss_calls){1, 1, 0, 0, 0, 1, 0, 0});
}

static void test_update_espocrm_side(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Schmidt\",\"vorname\":\"Eva\"}", id, sizeof id, &betnr, &version);
    struct ss_calls before;
    ss_snapshot(&before);
    ss_ui_update(id, "{\"vorname\":\"Evelyn\",\"titel\":\"Dr.\"}");
    json_t *e = ss_wait_status(id, "clean", version + 1);
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Evelyn");
    assert_string_equal(ss_str(a, "titel"), "Dr.");
    assert_string_equal(ss_str(a, "rowId"), ss_str(e, "advowareRowId"));
    json_decref(a);
    json_decref(e);
    ss_expect_calls(&before, (struct ss_calls){1, 1, 0, 1, 1, 0, 0, 0}); /* 4 calls */
}

static void test_update_advoware_side(void **state)
{
    (void)state;
    char id[80], path[160];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Weber\",\"vorname\":\"Jan\",\"zusatz\":\"alt\"}", id, sizeof id,
                     &betnr, &version);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"vorname\":\"Johann\",\"zusatz\":null}"));
    struct ss_calls before;
    ss_snapshot(&before);
    ss_sync_check(id, "stale_clean");
    json_t *e = ss_wait_status(id, "clean", version);
    assert_string_equal(ss_str(e, "vorname"), "Johann");
    assert_true(json_is_null(json_object_get(e, "zusatz"))); /* a null in Advoware clears */
    assert_string_equal(ss_str(e, "name"), "Weber");
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "rowId"), ss_str(e, "advowareRowId"));
    json_decref(a);
    json_decref(e);
    ss_expect_calls(&before, (struct ss_calls){1, 1, 0, 1, 0, 0, 0,
                                               0}); /* 3 calls: data and status in one PUT */
}

static void test_no_change(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Fischer\"}", id, sizeof id, &betnr, &version);
    struct ss_calls before;
    ss_snapshot(&before);
    ss_sync_check(id, NULL);
    /* the run is over when both GETs happened and nothing moves any more */
    bool ok;
    TH_WAIT(ok, ss_calls_of(&ss.advo, "GET", A_ONE) > before.a_get, 30000);
    assert_true(ok);
    ss_expect_calls(&before,
                    (struct ss_calls){1, 0, 0, 1, 0, 0, 0, 0}); /* 2 calls: nothing needs writing */
    json_t *e = ss_espo_state(id);
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), version);
    json_decref(e);
}

static void test_conflict_espocrm_wins(void **state)
{
    (void)state;
    char id[80], path[160];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Keller\",\"vorname\":\"Ina\",\"assignedUserId\":\"u-ina\"}", id,
                     sizeof id, &betnr, &version);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"vorname\":\"Irene\"}"));
    ss_ui_update(id, "{\"vorname\":\"Isa\"}");
    json_t *e = ss_wait_status(id, "clean", version + 1);
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Isa");
    assert_string_equal(ss_str(e, "vorname"), "Isa");
    json_decref(a);
    json_decref(e);
    ss_settle();
    assert_int_equal(ss_notifications_with("Konflikt gelöst: EspoCRM-Daten wurden übernommen"), 1);
    /* SPEC §5.2: the notice names the Advoware value it overwrote */
    assert_int_equal(ss_notifications_with("vorname: Advoware hatte 'Irene'"), 1);
}

/* SPEC §5.2: conflicts are per field. An Advoware edit of a field nobody touched in EspoCRM
 * survives an EspoCRM edit of another field; no conflict, nobody is told. */
static void test_edits_of_different_fields_both_survive(void **state)
{
    (void)state;
    char id[80], path[160];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Brandt Ohg\",\"vorname\":\"Olaf\",\"titel\":\"Dr.\"}", id,
                     sizeof id, &betnr, &version);
    json_t *e = ss_espo_state(id); /* the baseline of the create: what was posted */
    json_t *b = json_loads(ss_str(e, "advowareSyncBaseline"), 0, NULL);
    assert_string_equal(ss_str(json_object_get(b, "fields"), "vorname"), "Olaf");
    json_decref(b);
    json_decref(e);
    long conflicts_before = ss_notifications_with("Konflikt gelöst");
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"titel\":\"Prof.\"}"));
    ss_ui_update(id, "{\"vorname\":\"Ole\"}");
    e = ss_wait_status(id, "clean", version + 1);
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Ole");
    assert_string_equal(ss_str(a, "titel"), "Prof.");
    assert_string_equal(ss_str(e, "vorname"), "Ole");
    assert_string_equal(ss_str(e, "titel"), "Prof.");
    b = json_loads(ss_str(e, "advowareSyncBaseline"), 0, NULL);
    assert_string_equal(ss_str(json_object_get(b, "fields"), "titel"), "Prof.");
    assert_string_equal(ss_str(b, "rowId"), ss_str(a, "rowId"));
    json_decref(b);
    json_decref(a);
    json_decref(e);
    ss_settle();
    assert_int_equal(ss_notifications_with("Konflikt gelöst"), conflicts_before);
}

static void test_delete_notifies_with_betnr(void **state)
{
    (void)state;
    char id[80], path[160], text[128];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Lang\",\"assignedUserId\":\"u-lang\"}", id, sizeof id, &betnr,
                     &version);
    struct ss_calls before;
    ss_snapshot(&before);
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    json_decref(ss_call(&ss.espo, "DELETE", path, NULL));
    snprintf(text, sizeof text, "Bitte manuell in Advoware löschen: betNr %lld", betnr);
    bool ok;
    TH_WAIT(ok, ss_notifications_with(text) == 1, 30000);
    assert_true(ok);
    ss_expect_calls(&before, (struct ss_calls){1, 0, 1, 0, 0, 0, 0, 0});
    assert_int_equal(th_sim_calls(&ss.advo, "DELETE", A_ONE, 0), 0);
    json_t *a = ss_advo_state(betnr); /* still there: a person deletes it */
    json_decref(a);
}

static void test_validation_error_is_permanent(void **state)
{
    (void)state;
    char id[80];
    struct ss_calls before;
    ss_snapshot(&before);
    /* EspoCRM itself refuses a vorname over 30 characters (recorded 03): bad data that reaches
     * the sync is what only Advoware rejects, a Rechtsform not in its list. */
    ss_ui_create("{\"name\":\"Vogel\",\"rechtsform\":\"Xyz\"}", id, sizeof id);
    json_t *e = ss_wait_status(id, "permanently_failed", 0);
    assert_non_null(strstr(ss_str(e, "syncErrorMessage"), "rechtsform"));
    long long version = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    ss_expect_calls(&before, (struct ss_calls){1, 1, 1, 0, 0, 0, 0, 0});
    assert_int_equal(ss_notifications_with("in Advoware nicht erlaubt"), 1);
    /* a later cron run that finds nothing changed keeps the failure (the data is still bad) */
    ss_snapshot(&before);
    ss_sync_check(id, "dirty");
    bool ok;
    TH_WAIT(ok, ss_calls_of(&ss.espo, "GET", E_ONE) > before.e_get, 30000);
    assert_true(ok);
    ss_settle();
    e = ss_espo_state(id);
    assert_string_equal(ss_str(e, "syncStatus"), "permanently_failed");
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), version);
    json_decref(e);
    assert_int_equal(ss_notifications_with("in Advoware nicht erlaubt"), 1);
}

static void test_advoware_404_is_deleted_in_advoware(void **state)
{
    (void)state;
    char id[80];
    ss_ui_create("{\"name\":\"Graf\",\"betnr\":987654}", id, sizeof id);
    json_t *e = ss_wait_status(id, "deleted_in_advoware", 0);
    json_decref(e);
    ss_settle();
    assert_int_equal(ss_notifications_with("betNr 987654"), 1);
}

static long long seconds(const json_t *e, const char *field)
{
    int y, mo, d, h, mi, se;
    if (sscanf(ss_str(e, field), "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6)
        fail_msg("%s: not a datetime: \"%s\"", field, ss_str(e, field));
    return ((long long)d * 24 + h) * 3600 + mi * 60 + se; /* enough within one month */
}

static void test_transient_failure_then_retry_scan(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Roth\",\"vorname\":\"Uwe\"}", id, sizeof id, &betnr, &version);
    ss_fault(&ss.advo, "PUT", A_ONE, 503, 1);
    ss_ui_update(id, "{\"vorname\":\"Ulf\"}");
    json_t *e = ss_wait_status(id, "failed", version + 1);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 1);
    assert_non_null(strstr(ss_str(e, "syncErrorMessage"), "503"));
    long long wait = seconds(e, "syncNextRetry") - seconds(e, "modifiedAt");
    assert_true(wait >= 58 && wait <= 61); /* 1 min backoff */
    long long v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    /* a minute passes (made due by a person; that save touches only a sync field, so its
     * webhook is dropped as an echo, SPEC §3.1), the retry scan picks it up */
    ss_ui_update(id, "{\"syncNextRetry\":\"2020-01-01 00:00:00\"}");
    ss_sync_check(id, "failed");
    e = ss_wait_status(id, "clean", v + 1);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 0);
    assert_true(json_is_null(json_object_get(e, "syncErrorMessage")));
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Ulf");
    json_decref(a);
    json_decref(e);
    ss_settle();
}

static void test_five_failures_then_auto_reset(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Sommer\",\"assignedUserId\":\"u-som\"}", id, sizeof id, &betnr,
                     &version);
    ss_fault(&ss.advo, "GET", A_ONE, 503, 5);
    long long v = version;
    for (int i = 1; i <= 5; i++) {
        ss_sync_check(id, i == 1 ? NULL : "failed");
        json_t *e = ss_wait_status(id, i < 5 ? "failed" : "permanently_failed", v);
        assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), i);
        v = json_integer_value(json_object_get(e, "versionNumber"));
        if (i == 5) {
            long long reset = seconds(e, "syncAutoResetAt") - seconds(e, "modifiedAt");
            assert_true(reset >= 24 * 3600 - 2 && reset <= 24 * 3600 + 1);
        }
        json_decref(e);
    }
    ss_settle();
    assert_int_equal(ss_notifications_with("5-mal fehlgeschlagen"), 1);
    /* the cron's auto reset: a normal run again, from retry count 0 */
    ss_sync_check(id, "auto_reset");
    json_t *e = ss_wait_status(id, "clean", v);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 0);
    assert_true(json_is_null(json_object_get(e, "syncAutoResetAt")));
    json_decref(e);
    ss_settle();
}

/* A UI edit lands while a run is between its GET and its final PUT (Advoware's PUT is slow):
 * EspoCRM answers the PUT with 409, the run starts over, and the edit reaches Advoware. */
static void test_edit_during_a_run_is_not_lost(void **state)
{
    (void)state;
    char id[80], body[200];
    long long betnr, version;
    ss_synced_entity("{\"name\":\"Brandt\",\"vorname\":\"Tom\"}", id, sizeof id, &betnr, &version);
    snprintf(body, sizeof body,
             "{\"method\":\"PUT\",\"route\":\"%s\",\"delay_ms\":1500,\"count\":1}", A_ONE);
    json_decref(ss_call(&ss.advo, "POST", "/_sim/faults", body));
    long retries_before = 0;
    for (int i = 0; i < 2; i++)
        retries_before += (long)th_metric(ss.w[i].metrics_port, "vmh_sync_retries_total", NULL);
    ss_ui_update(id, "{\"vorname\":\"Timo\"}");
    /* The delay fault is taken when the run's Advoware PUT arrives (count 1): while it is in
     * flight for 1.5 s, the person edits again. */
    bool ok = false;
    long long end = th_now_ms() + 20000;
    while (!ok && th_now_ms() < end) {
        json_t *faults = ss_call(&ss.advo, "GET", "/_sim/faults", NULL);
        ok = json_array_size(json_object_get(faults, "faults")) == 0;
        json_decref(faults);
        if (!ok)
            th_sleep_ms(5);
    }
    assert_true(ok);
    ss_ui_update(id, "{\"titel\":\"Prof.\"}");
    json_t *e = ss_wait_status(id, "clean", version + 2);
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Timo");
    assert_string_equal(ss_str(a, "titel"), "Prof.");
    json_decref(a);
    json_decref(e);
    ss_settle();
    long retries = 0;
    for (int i = 0; i < 2; i++)
        retries += (long)th_metric(ss.w[i].metrics_port, "vmh_sync_retries_total", NULL);
    assert_true(retries > retries_before); /* the 409 started a run over */
}

/* Whether id is one of the entities of a state dump taken before (JSON array). */
static bool existed(const json_t *before, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(before, i, e)
    {
        if (strcmp(ss_str(e, "id"), id) == 0)
            return true;
    }
    return false;
}

/* The seeded entities (those not in before) of a fresh state dump; *all_clean says whether
 * each of them is clean. New reference. */
static json_t *seeded(const json_t *before, bool *all_clean)
{
    json_t *all = ss_call(&ss.espo, "GET", "/_sim/state/CBeteiligte", NULL), *e;
    json_t *mine = json_array();
    size_t i;
    *all_clean = true;
    json_array_foreach(all, i, e)
    {
        if (existed(before, ss_str(e, "id")))
            continue;
        json_array_append(mine, e);
        *all_clean &= strcmp(ss_str(e, "syncStatus"), "clean") == 0;
    }
    json_decref(all);
    return mine;
}

/* 200 entities from EspoCRM's seed, synced by two workers: all clean, both sides equal. */
static void test_200_entities(void **state)
{
    (void)state;
    json_t *before = ss_call(&ss.espo, "GET", "/_sim/state/CBeteiligte", NULL);
    json_t *records = ss_call(&ss.advo, "GET", "/_sim/state/Beteiligte", NULL);
    long advo_before = (long)json_array_size(records);
    json_decref(records);
    json_decref(ss_call(&ss.espo, "POST", "/_sim/seed", "{\"count\":200}"));
    bool clean;
    json_t *mine = seeded(before, &clean), *e;
    size_t i;
    json_array_foreach(mine, i, e)
    {
        ss_sync_check(ss_str(e, "id"), "pending_sync"); /* what the fallback scan sends */
    }
    assert_int_equal(json_array_size(mine), 200);
    long long end = th_now_ms() + 120000;
    while (!clean && th_now_ms() < end) {
        json_decref(mine);
        th_sleep_ms(100); /* polling interval */
        mine = seeded(before, &clean);
    }
    assert_true(clean);
    json_array_foreach(mine, i, e)
    {
        json_t *a = ss_advo_state(json_integer_value(json_object_get(e, "betnr")));
        assert_string_equal(ss_str(a, "name"), ss_str(e, "name"));
        assert_string_equal(ss_str(a, "vorname"), ss_str(e, "vorname"));
        assert_string_equal(ss_str(a, "rechtsform"), ss_str(e, "rechtsform"));
        assert_string_equal(ss_str(a, "rowId"), ss_str(e, "advowareRowId"));
        json_decref(a);
    }
    /* every entity exactly once in Advoware */
    records = ss_call(&ss.advo, "GET", "/_sim/state/Beteiligte", NULL);
    assert_int_equal((long)json_array_size(records) - advo_before, 200);
    json_decref(records);
    json_decref(mine);
    json_decref(before);
}

/* A worker killed between the Advoware POST and the EspoCRM PUT: the redelivered message finds
 * the link and finishes it; Advoware holds exactly one record. */
static void test_kill_between_post_and_put_creates_once(void **state)
{
    (void)state;
    char body[200], id[80];
    snprintf(body, sizeof body,
             "{\"method\":\"PUT\",\"route\":\"%s\",\"delay_ms\":30000,\"count\":1}", E_ONE);
    json_decref(ss_call(&ss.espo, "POST", "/_sim/faults", body));
    long posts = ss_calls_of(&ss.advo, "POST", A_ALL);
    ss_ui_create("{\"name\":\"Einmalig\"}", id, sizeof id);
    bool ok;
    TH_WAIT(ok, ss_calls_of(&ss.advo, "POST", A_ALL) == posts + 1, 30000);
    assert_true(ok);
    /* the run now waits for EspoCRM's slow PUT: kill its worker */
    int victim = -1;
    TH_WAIT(ok,
            (victim = th_metric(ss.w[0].metrics_port, "vmh_inflight", NULL) > 0   ? 0
                      : th_metric(ss.w[1].metrics_port, "vmh_inflight", NULL) > 0 ? 1
                                                                                  : -1) >= 0,
            10000);
    assert_true(ok);
    assert_int_equal(th_proc_stop(&ss.w[victim].proc, SIGKILL, 5000), 128 + SIGKILL);
    json_decref(ss_call(&ss.espo, "POST", "/_sim/faults", NULL)); /* clear the delay */
    assert_int_equal(ss_start_worker(victim), 0);
    TH_WAIT(ok, th_worker_ready(&ss.w[victim]), 60000);
    assert_true(ok);
    json_t *e = ss_wait_status(id, "clean", 0);
    long long betnr = json_integer_value(json_object_get(e, "betnr"));
    assert_true(betnr > 0);
    json_decref(e);
    ss_settle();
    assert_int_equal(ss_calls_of(&ss.advo, "POST", A_ALL), posts + 1); /* no duplicate */
    json_t *records = ss_call(&ss.advo, "GET", "/_sim/state/Beteiligte", NULL), *r;
    size_t i, named = 0;
    json_array_foreach(records, i, r)
    {
        named += strcmp(ss_str(r, "name"), "Einmalig") == 0;
    }
    json_decref(records);
    assert_int_equal(named, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_update_espocrm_side),
        cmocka_unit_test(test_update_advoware_side),
        cmocka_unit_test(test_no_change),
        cmocka_unit_test(test_conflict_espocrm_wins),
        cmocka_unit_test(test_edits_of_different_fields_both_survive),
        cmocka_unit_test(test_delete_notifies_with_betnr),
        cmocka_unit_test(test_validation_error_is_permanent),
        cmocka_unit_test(test_advoware_404_is_deleted_in_advoware),
        cmocka_unit_test(test_transient_failure_then_retry_scan),
        cmocka_unit_test(test_five_failures_then_auto_reset),
        cmocka_unit_test(test_edit_during_a_run_is_not_lost),
        cmocka_unit_test(test_kill_between_post_and_put_creates_once),
        cmocka_unit_test(test_200_entities),
    };
    return cmocka_run_group_tests(tests, ss_setup, ss_teardown);
}
