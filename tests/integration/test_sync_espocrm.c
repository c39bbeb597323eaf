/* test_sync_espocrm.c: the sync against what a real EspoCRM 9.1.5 does (SPEC v2 §3.1, §5.3,
 * §5.4, §5.5), end to end on the full stack (tests/support/sync_stack): phone numbers Advoware
 * users type nationally arrive in E.164 and cause no ping-pong; an entry EspoCRM cannot take is
 * skipped and reported once while the rest syncs; the backoff of a failed party holds against
 * webhook runs; a deletion notice that fails is sent again before the link is marked; a final
 * PUT EspoCRM refuses (400) leaves a status a person can read. */
#include "msg.h"
#include "store.h"
#include "sync_stack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An Advoware user adds a Kommunikation entry. */
static void advo_add(long long betnr, const char *tlf, int kz)
{
    char path[128], body[256];
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen", betnr);
    snprintf(body, sizeof body, "{\"tlf\":\"%s\",\"kommKz\":%d}", tlf, kz);
    json_decref(ss_call(&ss.advo, "POST", path, body));
}

/* The party's EspoCRM phone entry of value; NULL if none. Borrowed from e. */
static json_t *espo_phone(json_t *e, const char *value)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(e, "phoneNumberData"), i, p)
    {
        if (strcmp(ss_str(p, "phoneNumber"), value) == 0)
            return p;
    }
    return NULL;
}

/* A message for id as a webhook would cause it. */
static void webhook_message(const char *id)
{
    char *v = msg_encode(id, MSG_EVENT_UPDATE, MSG_SOURCE_WEBHOOK, NULL, 1767225600000LL);
    assert_int_equal(th_kprod_send(ss.kp, "vmh.beteiligte.update", -1, id, v, strlen(v)), 0);
    assert_int_equal(th_kprod_flush(ss.kp, 10000), 0);
    free(v);
}

/* Messages both workers completed: the signal that a run which writes nothing happened. */
static double messages_done(void)
{
    return th_metric(ss.w[0].metrics_port, "vmh_messages_done_total", NULL) +
           th_metric(ss.w[1].metrics_port, "vmh_messages_done_total", NULL);
}

/* Sends one message (a cron sync_check, or a webhook's update) and waits until a worker
 * completed it. */
static void run_once(const char *id, bool webhook)
{
    double before = messages_done();
    if (webhook)
        webhook_message(id);
    else
        ss_sync_check(id, "failed");
    bool ok;
    TH_WAIT(ok, messages_done() >= before + 1, 30000);
    assert_true(ok);
}

/* No write on either side since before; reads are allowed (an echo of the pull that carries the
 * phone list may cost one more no_change run, SPEC §3.1). */
static void expect_no_writes(const struct ss_calls *before)
{
    ss_settle();
    struct ss_calls now;
    ss_snapshot(&now);
    if (now.e_put != before->e_put || now.a_put != before->a_put || now.a_post != before->a_post ||
        now.k_post != before->k_post || now.k_put != before->k_put || now.notif != before->notif)
        fail_msg("writes: espo PUT %ld, advo PUT %ld POST %ld, komm POST %ld PUT %ld, notes %ld",
                 now.e_put - before->e_put, now.a_put - before->a_put, now.a_post - before->a_post,
                 now.k_post - before->k_post, now.k_put - before->k_put, now.notif - before->notif);
    assert_true(now.e_get > before->e_get);
}

static long long version_of(const char *id)
{
    json_t *e = ss_espo_state(id);
    long long v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    return v;
}

/* SPEC §5.4: 0511/12345 typed in Advoware arrives in EspoCRM as +4951112345 (EspoCRM rejects
 * national numbers with a 400, recorded 02), and the next run writes nothing on either side. */
static void test_national_number_arrives_in_e164_without_ping_pong(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Telefon National GmbH\"}", id, sizeof id, &betnr, &v);
    advo_add(betnr, "0511/12345", 1);
    advo_add(betnr, "(0511) 998877", 3);
    ss_sync_check(id, "stale_clean");
    json_t *e = ss_wait_status(id, "clean", v);
    json_t *office = espo_phone(e, "+4951112345"), *mobile = espo_phone(e, "+49511998877");
    assert_non_null(office);
    assert_non_null(mobile);
    assert_string_equal(ss_str(office, "type"), "Office");
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);

    struct ss_calls before;
    ss_snapshot(&before);
    run_once(id, false);
    expect_no_writes(&before);
    assert_int_equal(version_of(id), v); /* nothing written in EspoCRM */
}

/* SPEC §5.4: an entry EspoCRM cannot take is not sent, the rest syncs, the party is clean with
 * syncErrorMessage naming it, one notification; no loop. */
static void test_entry_espocrm_rejects_is_skipped_and_told_once(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Telefon Kaputt GmbH\"}", id, sizeof id, &betnr, &v);
    advo_add(betnr, "0511/ab", 1);
    advo_add(betnr, "0511 4455", 1);
    ss_sync_check(id, "stale_clean");
    json_t *e = ss_wait_status(id, "clean", v);
    assert_non_null(espo_phone(e, "+495114455"));
    assert_int_equal(json_array_size(json_object_get(e, "phoneNumberData")), 1);
    assert_non_null(strstr(ss_str(e, "syncErrorMessage"), "0511/ab"));
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    bool ok;
    TH_WAIT(ok, ss_notifications_with("0511/ab") == 1, 10000);
    assert_true(ok);

    struct ss_calls before;
    ss_snapshot(&before);
    run_once(id, false);
    expect_no_writes(&before);
    assert_int_equal(version_of(id), v);
    assert_int_equal(ss_notifications_with("0511/ab"), 1);
    /* The entry stays in Advoware as the user typed it. */
    json_t *a = ss_advo_state(betnr), *k;
    size_t i;
    bool kept = false;
    json_array_foreach(json_object_get(a, "kommunikation"), i, k)
    {
        kept |= strcmp(ss_str(k, "tlf"), "0511/ab") == 0;
    }
    json_decref(a);
    assert_true(kept);
    /* The cron's daily check writes advowareLastSync: the entry still is not in EspoCRM, and the
     * message keeps saying so. */
    ss_sync_check(id, "stale_clean");
    e = ss_wait_status(id, "clean", v);
    assert_non_null(strstr(ss_str(e, "syncErrorMessage"), "0511/ab"));
    json_decref(e);
}

/* A party a UI user created with one office number, whose create stopped half way: the
 * Kommunikation POST failed, the failure's status write carried the betnr and no baseline. */
static void half_created(const char *name, const char *phone, char *id, size_t idlen,
                         long long *betnr, long long *v)
{
    char attrs[256];
    snprintf(attrs, sizeof attrs,
             "{\"name\":\"%s\",\"phoneNumberData\":[{\"phoneNumber\":\"%s\",\"type\":"
             "\"Office\",\"primary\":true}]}",
             name, phone);
    ss_fault(&ss.advo, "POST", A_KOMMS, 503, 1);
    ss_ui_create(attrs, id, idlen);
    json_t *e = ss_wait_status(id, "failed", 0);
    *betnr = json_integer_value(json_object_get(e, "betnr"));
    *v = json_integer_value(json_object_get(e, "versionNumber"));
    assert_true(*betnr > 0);
    assert_true(json_is_null(json_object_get(e, "advowareSyncBaseline")) ||
                !*ss_str(e, "advowareSyncBaseline"));
    json_decref(e);
}

/* SPEC §5.2: after a CREATE the baseline is what was posted, even when the final PUT did not
 * happen. Here the create's Kommunikation POST fails: its failure writes the status and the
 * betnr, no baseline. An Advoware edit before the retry is taken over, not a conflict (a chaos
 * run found the retry deciding without a baseline: a false "Konflikt gelöst" that overwrote the
 * Advoware edit). */
static void test_create_failed_after_its_post_keeps_the_posted_baseline(void **state)
{
    (void)state;
    char id[64], path[128];
    long long betnr, v;
    half_created("Halb Angelegt GmbH", "+4951166666", id, sizeof id, &betnr, &v);
    long conflicts = ss_notifications_with("Konflikt");
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"zusatz\":\"aus Advoware\"}"));
    ss_sync_check(id, "failed"); /* the retry scan */
    json_t *e = ss_wait_status(id, "clean", v);
    assert_string_equal(ss_str(e, "zusatz"), "aus Advoware");
    assert_non_null(espo_phone(e, "+4951166666"));
    json_decref(e);
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "zusatz"), "aus Advoware");
    json_decref(a);
    ss_settle();
    assert_int_equal(ss_notifications_with("Konflikt"), conflicts);
}

/* SPEC §5.4: without a stored "komm" (a create whose final PUT did not happen) the markers
 * decide. A number an Advoware user added gets its marker; the answer is lost (apply + 503) and
 * EspoCRM never gets the number. The next run must not read that marker as "deleted in EspoCRM"
 * (it emptied the entry: a chaos run's lost edit): the write-ahead baseline carries what the
 * markers said before the run. */
static void test_advoware_number_survives_a_lost_marker_answer_without_a_baseline(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    half_created("Ohne Basis GmbH", "+4951166661", id, sizeof id, &betnr, &v);
    advo_add(betnr, "0511/66662", 1);
    long conflicts = ss_notifications_with("Konflikt");
    json_decref(ss_call(&ss.advo, "POST", "/_sim/faults",
                        "{\"method\":\"PUT\",\"route\":\"" A_KOMM
                        "\",\"status\":503,\"apply\":true,\"count\":1}"));
    ss_sync_check(id, "failed"); /* the marker lands, its answer is lost */
    json_t *e = ss_wait_status(id, "failed", v);
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    ss_sync_check(id, "failed");
    e = ss_wait_status(id, "clean", v);
    assert_non_null(espo_phone(e, "+4951166661"));
    assert_non_null(espo_phone(e, "+4951166662"));
    assert_int_equal(json_array_size(json_object_get(e, "phoneNumberData")), 2);
    json_decref(e);
    json_t *a = ss_advo_state(betnr), *k;
    size_t i, filled = 0, kept = 0;
    json_array_foreach(json_object_get(a, "kommunikation"), i, k)
    {
        filled += *ss_str(k, "tlf") != 0;
        kept += strcmp(ss_str(k, "tlf"), "0511/66662") == 0;
    }
    json_decref(a);
    assert_int_equal(kept, 1);
    assert_int_equal(filled, 2);
    ss_settle();
    assert_int_equal(ss_notifications_with("Konflikt"), conflicts);
}

/* SPEC §3.1 "Backoff holds": a webhook run (an echo, a duplicate) never retries a failed party
 * early; the retry scan does. */
static void test_backoff_holds_against_webhook_runs(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Backoff GmbH\"}", id, sizeof id, &betnr, &v);
    ss_fault(&ss.advo, "GET", A_ONE, 503, 1);
    ss_ui_update(id, "{\"vorname\":\"Erika\"}");
    json_t *e = ss_wait_status(id, "failed", v);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 1);
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);

    struct ss_calls before;
    ss_snapshot(&before);
    run_once(id, true);
    ss_expect_calls(&before, (struct ss_calls){.e_get = 1});
    assert_int_equal(version_of(id), v);

    ss_sync_check(id, "failed"); /* the retry scan */
    e = ss_wait_status(id, "clean", v);
    json_decref(e);
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Erika");
    json_decref(a);
}

/* SPEC §5.6: a person's edit after failures starts the retry count over. */
static void test_edit_after_failure_restarts_retry_count(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Neuanfang GmbH\"}", id, sizeof id, &betnr, &v);
    ss_fault(&ss.advo, "GET", A_ONE, 503, 1);
    ss_ui_update(id, "{\"vorname\":\"Erste\"}");
    json_t *e = ss_wait_status(id, "failed", v);
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    ss_fault(&ss.advo, "GET", A_ONE, 503, 1);
    ss_ui_update(id, "{\"vorname\":\"Zweite\"}"); /* dirty: not held, count starts over */
    e = ss_wait_status(id, "failed", v);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 1);
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    ss_sync_check(id, "failed");
    json_decref(ss_wait_status(id, "clean", v));
}

/* SPEC §5.2/§5.4, issue 13: numbers an Advoware user added (Var4) and changed (Var6) survive a
 * final EspoCRM PUT that fails after the run wrote its markers into Advoware. Version 1 read the
 * fresh markers as the baseline: the retry emptied the added entry (Var2) and wrote the old
 * number back over the change (Var5). Per-entry against the stored baseline, the retry takes both
 * over, writes no marker again, and tells nobody about a conflict. */
static void test_advoware_entry_edits_survive_a_failed_final_put(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Marker GmbH\",\"phoneNumberData\":[{\"phoneNumber\":"
                     "\"+4951133333\",\"type\":\"Office\",\"primary\":true}]}",
                     id, sizeof id, &betnr, &v);
    json_t *a = ss_advo_state(betnr);
    long long entry = json_integer_value(
        json_object_get(json_array_get(json_object_get(a, "kommunikation"), 0), "id"));
    json_decref(a);
    char path[160];
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen/%lld", betnr, entry);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"tlf\":\"0511/44444\"}"));
    advo_add(betnr, "0511/55555", 1);
    struct ss_calls before;
    ss_snapshot(&before);
    long long failed_puts = th_sim_calls(&ss.espo, "PUT", E_ONE, 503);
    ss_fault(&ss.espo, "PUT", E_ONE, 503, 1);
    ss_sync_check(id, "stale_clean"); /* the run's final PUT fails; the retry finishes */
    json_t *e = ss_wait_status(id, "clean", v);
    assert_int_equal(th_sim_calls(&ss.espo, "PUT", E_ONE, 503), failed_puts + 1);
    assert_non_null(espo_phone(e, "+4951144444"));
    assert_non_null(espo_phone(e, "+4951155555"));
    assert_null(espo_phone(e, "+4951133333"));
    assert_int_equal(json_array_size(json_object_get(e, "phoneNumberData")), 2);
    json_decref(e);
    ss_settle();
    struct ss_calls now;
    ss_snapshot(&now);
    assert_int_equal(now.k_put - before.k_put, 2); /* two markers, not written again */
    assert_int_equal(now.k_post - before.k_post, 0);
    a = ss_advo_state(betnr);
    size_t i, filled = 0;
    json_t *k;
    json_array_foreach(json_object_get(a, "kommunikation"), i, k) filled += *ss_str(k, "tlf") != 0;
    assert_int_equal(filled, 2);
    json_decref(a);
    assert_int_equal(ss_notifications_with("Konflikt"), 0);
    ss_quiesce();
}

/* SPEC §5.3: a status-only write that meets a person's edit (409) is written again on the
 * fresh version, without redoing the run; the party ends with a status a person can read, and
 * the edit is kept. */
static void test_status_write_409_is_written_again(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Status Konflikt GmbH\"}", id, sizeof id, &betnr, &v);
    ss_fault(&ss.advo, "GET", A_ONE, 503, 1);
    ss_fault(&ss.espo, "PUT", E_ONE, 409, 1);
    long advo_gets = ss_calls_of(&ss.advo, "GET", A_ONE);
    ss_ui_update(id, "{\"vorname\":\"Konflikt\"}");
    json_t *e = ss_wait_status(id, "failed", v);
    ss_settle(); /* re-read and written again: the run's Advoware GET is not repeated */
    assert_int_equal(ss_calls_of(&ss.advo, "GET", A_ONE), advo_gets + 1);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 1);
    assert_string_equal(ss_str(e, "vorname"), "Konflikt");
    v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    assert_true(th_sim_calls(&ss.espo, "PUT", E_ONE, 409) >= 1);
    ss_sync_check(id, "failed");
    json_decref(ss_wait_status(id, "clean", v));
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Konflikt");
    json_decref(a);
}

/* SPEC §5.3 "Never two Advoware records": a POST whose outcome is unknown (here a 2xx without
 * a betNr) is not repeated; the party is failed with the message and one notice, retries skip the
 * POST while the mark stands, and each resolution (vmhctl create / vmhctl link) ends in exactly
 * one record. */
static void test_uncertain_create_is_never_repeated(void **state)
{
    (void)state;
    char create_id[64], link_id[64], err[256];
    struct redis_client *rc = th_redis_client(&ss.redis);
    assert_non_null(rc);
    long posts = ss_calls_of(&ss.advo, "POST", A_ALL);
    ss_fault(&ss.advo, "POST", A_ALL, 200, 2);
    ss_ui_create("{\"name\":\"Ungewiss Eins GmbH\"}", create_id, sizeof create_id);
    ss_ui_create("{\"name\":\"Ungewiss Zwei GmbH\"}", link_id, sizeof link_id);
    json_t *e = ss_wait_status(create_id, "failed", 0);
    assert_non_null(strstr(ss_str(e, "syncErrorMessage"), "Anlage in Advoware ungewiss"));
    assert_true(
        json_is_string(json_object_get(e, "syncNextRetry"))); /* a day ahead: a person decides */
    long long v1 = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    e = ss_wait_status(link_id, "failed", 0);
    long long v2 = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    bool ok;
    TH_WAIT(ok, ss_notifications_with("Anlage in Advoware ungewiss") == 2, 10000);
    assert_true(ok);
    assert_int_equal(ss_calls_of(&ss.advo, "POST", A_ALL), posts + 2);

    /* a retry while the mark stands: no POST, nothing written, nobody told again */
    run_once(create_id, false);
    ss_settle();
    assert_int_equal(ss_calls_of(&ss.advo, "POST", A_ALL), posts + 2);
    assert_int_equal(version_of(create_id), v1);
    assert_int_equal(ss_notifications_with("Anlage in Advoware ungewiss"), 2);

    /* vmhctl create: nobody found a record, one new POST */
    assert_int_equal(store_resolve_create(rc, create_id, err, sizeof err), 0);
    ss_sync_check(create_id, "failed");
    e = ss_wait_status(create_id, "clean", v1);
    assert_true(json_integer_value(json_object_get(e, "betnr")) > 0);
    json_decref(e);
    assert_int_equal(ss_calls_of(&ss.advo, "POST", A_ALL), posts + 3);

    /* vmhctl link: a person found the record and names its betNr; no POST */
    json_t *rec =
        ss_call(&ss.advo, "POST", "/_sim/ui/Beteiligte", "{\"name\":\"Ungewiss Zwei GmbH\"}");
    long long betnr = json_integer_value(json_object_get(rec, "betNr"));
    json_decref(rec);
    assert_true(betnr > 0);
    assert_int_equal(store_resolve_link(rc, link_id, betnr, err, sizeof err), 0);
    ss_sync_check(link_id, "failed");
    e = ss_wait_status(link_id, "clean", v2);
    assert_int_equal(json_integer_value(json_object_get(e, "betnr")), betnr);
    json_decref(e);
    assert_int_equal(ss_calls_of(&ss.advo, "POST", A_ALL), posts + 3);
    redis_client_free(rc);
}

/* SPEC §5.3: a run checks that it still holds its lock before each write. Here the lock is
 * taken over while the run waits for Advoware (as after an expiry): the run stops and writes
 * nothing; the party is synced by the next run. */
static void test_run_that_lost_its_lock_writes_nothing(void **state)
{
    (void)state;
    char id[64], port[16], key[128];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Schloss GmbH\"}", id, sizeof id, &betnr, &v);
    snprintf(port, sizeof port, "%d", ss.redis.port);
    snprintf(key, sizeof key, "sync_lock:cbeteiligte:%s", id);
    char url[160];
    snprintf(url, sizeof url, "%s/_sim/faults", ss.advo.url);
    assert_int_equal(th_http("POST", url, NULL,
                             "{\"method\":\"GET\",\"route\":\"" A_ONE "\",\"delay_ms\":1500,"
                             "\"count\":1}",
                             NULL),
                     200);
    struct ss_calls before;
    ss_snapshot(&before);
    double done = messages_done();
    ss_ui_update(id, "{\"vorname\":\"Verloren\"}");
    /* the run holds the lock while Advoware delays its answer: another holder takes it over */
    char out[256];
    bool ok;
    const char *get[] = {"/usr/bin/redis-cli", "-p", port, "GET", key, NULL};
    TH_WAIT(ok, th_run(get, NULL, out, sizeof out, 5000) == 0 && strchr(out, ':') != NULL, 10000);
    assert_true(ok);
    const char *set[] = {"/usr/bin/redis-cli", "-p", port, "SET", key, "another-worker:1", NULL};
    assert_int_equal(th_run(set, NULL, out, sizeof out, 5000), 0);
    TH_WAIT(ok, messages_done() >= done + 1, 30000);
    assert_true(ok);
    struct ss_calls now;
    ss_snapshot(&now);
    assert_int_equal(now.a_put, before.a_put); /* nothing written on either side */
    assert_int_equal(now.e_put, before.e_put);
    json_t *a = ss_advo_state(betnr);
    assert_string_not_equal(ss_str(a, "vorname"), "Verloren");
    json_decref(a);

    /* the other holder is gone (its lock expired): the next run syncs the edit */
    const char *del[] = {"/usr/bin/redis-cli", "-p", port, "DEL", key, NULL};
    assert_int_equal(th_run(del, NULL, out, sizeof out, 5000), 0);
    ss_sync_check(id, "dirty");
    json_decref(ss_wait_status(id, "clean", v));
    a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Verloren");
    json_decref(a);
}

/* SPEC §5.3: a party deleted in EspoCRM while its create was uncertain. Advoware may hold a
 * record nobody will link any more: its user is told once, by name, to look and delete it by
 * hand; the mark goes; a replay tells nobody again. */
static void test_deleted_while_uncertain_is_told_once(void **state)
{
    (void)state;
    char id[64], path[128], err[256], since[32];
    struct redis_client *rc = th_redis_client(&ss.redis);
    assert_non_null(rc);
    ss_fault(&ss.advo, "POST", A_ALL, 503, 1); /* a 5xx: the record may exist (sync.c) */
    ss_ui_create("{\"name\":\"Weg Und Ungewiss GmbH\",\"assignedUserId\":\"u-weg\"}", id,
                 sizeof id);
    json_decref(ss_wait_status(id, "failed", 0));
    assert_int_equal(store_creating(rc, id, since, sizeof since, err, sizeof err), 1);
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    json_decref(ss_call(&ss.espo, "DELETE", path, NULL));
    bool ok;
    TH_WAIT(ok, ss_notifications_with("Weg Und Ungewiss GmbH") == 2, 30000); /* the two notices */
    assert_true(ok);
    assert_int_equal(ss_notifications_with("ihn dann manuell löschen"), 1);
    TH_WAIT(ok, store_creating(rc, id, since, sizeof since, err, sizeof err) == 0, 10000);
    assert_true(ok);
    ss_sync_check(id, "stale_clean"); /* a replay */
    ss_settle();
    assert_int_equal(ss_notifications_with("ihn dann manuell löschen"), 1);
    /* a mark of the version before (the time as plain text) still reads */
    assert_int_equal(
        redis_set(rc, "vmh:creating:alte-marke", "2026-01-01 10:00:00", 60000, err, sizeof err), 0);
    assert_int_equal(store_creating(rc, "alte-marke", since, sizeof since, err, sizeof err), 1);
    assert_string_equal(since, "2026-01-01 10:00:00");
    redis_client_free(rc);
}

/* SPEC §5.3: the deletion notice marks the link deleted only once it went through. */
static void test_deletion_notice_is_sent_again_when_it_failed(void **state)
{
    (void)state;
    char id[64], path[128], text[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Geloescht GmbH\"}", id, sizeof id, &betnr, &v);
    ss_fault(&ss.espo, "POST", "/api/v1/Note", 503, 1);
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    json_decref(ss_call(&ss.espo, "DELETE", path, NULL));
    snprintf(text, sizeof text, "betNr %lld", betnr);
    bool ok;
    TH_WAIT(ok, ss_notifications_with(text) == 1, 30000);
    assert_true(ok);
    assert_true(th_sim_calls(&ss.espo, "POST", "/api/v1/Note", 503) >= 1);
    ss_sync_check(id, "stale_clean"); /* a replay: the link is marked, nothing more is sent */
    ss_settle();
    assert_int_equal(ss_notifications_with(text), 1);
}

/* SPEC §5.3: EspoCRM refusing the final PUT (here: an Advoware user typed a name EspoCRM's
 * noBadCharacters pattern rejects, recorded 03) ends in permanently_failed with EspoCRM's
 * reason, and one notification; never silently dirty. */
static void test_refused_final_put_leaves_a_readable_status(void **state)
{
    (void)state;
    char id[64], path[128];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Muster Name GmbH\"}", id, sizeof id, &betnr, &v);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"name\":\"Muster <Name> GmbH\"}"));
    ss_sync_check(id, "stale_clean");
    json_t *e = ss_wait_status(id, "permanently_failed", v);
    const char *msg = ss_str(e, "syncErrorMessage");
    if (!strstr(msg, "EspoCRM lehnte die Daten ab") || !strstr(msg, "name"))
        fail_msg("syncErrorMessage: %s", msg);
    assert_string_equal(ss_str(e, "name"), "Muster Name GmbH");
    json_decref(e);
    bool ok;
    TH_WAIT(ok, ss_notifications_with("EspoCRM lehnte die Daten ab") == 1, 10000);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_national_number_arrives_in_e164_without_ping_pong),
        cmocka_unit_test(test_entry_espocrm_rejects_is_skipped_and_told_once),
        cmocka_unit_test(test_backoff_holds_against_webhook_runs),
        cmocka_unit_test(test_edit_after_failure_restarts_retry_count),
        cmocka_unit_test(test_advoware_entry_edits_survive_a_failed_final_put),
        cmocka_unit_test(test_create_failed_after_its_post_keeps_the_posted_baseline),
        cmocka_unit_test(test_advoware_number_survives_a_lost_marker_answer_without_a_baseline),
        cmocka_unit_test(test_status_write_409_is_written_again),
        cmocka_unit_test(test_uncertain_create_is_never_repeated),
        cmocka_unit_test(test_run_that_lost_its_lock_writes_nothing),
        cmocka_unit_test(test_deletion_notice_is_sent_again_when_it_failed),
        cmocka_unit_test(test_deleted_while_uncertain_is_told_once),
        cmocka_unit_test(test_refused_final_put_leaves_a_readable_status),
    };
    return cmocka_run_group_tests(tests, ss_setup, ss_teardown);
}
