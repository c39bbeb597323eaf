/* sync_stack.h: the full stack the end-to-end sync tests run against, and the outside world's
 * moves on it. kafka-mock, redis-server, espocrm-sim (which sends the webhooks), advoware-sim
 * (2-second tokens: every test also runs through token refreshes), vmh-producer and two
 * vmh-worker processes, all on free loopback ports. A test acts as the outside world does — a
 * UI user in EspoCRM, an Advoware user, a cron message — and checks both simulators' state and
 * the exact API calls from their /_sim/stats. Helpers fail the running cmocka test on error. */
#ifndef VMH_SYNC_STACK_H
#define VMH_SYNC_STACK_H

#include "harness.h"

#include <jansson.h>
#include <stddef.h>

#define SS_PARTITIONS 4
#define E_ONE         "/api/v1/CBeteiligte/{id}"
#define A_ONE         "/api/v1/advonet/Beteiligte/{betNr}"
#define A_ALL         "/api/v1/advonet/Beteiligte"
#define A_KOMMS       "/api/v1/advonet/Beteiligte/{betNr}/Kommunikationen"
#define A_KOMM        "/api/v1/advonet/Beteiligte/{betNr}/Kommunikationen/{id}"

struct sync_stack {
    struct th_kafka kafka;
    struct th_redis redis;
    struct th_sim espo, advo;
    struct th_proc producer;
    struct th_worker w[2];
    struct th_kprod *kp;
    int producer_metrics_port; /* vmh-producer's METRICS_LISTEN port */
    long sent;                 /* messages ss_sync_check sent */
};
extern struct sync_stack ss;

/* cmocka group setup and teardown: start and stop everything. */
int ss_setup(void **state);
int ss_teardown(void **state);
/* (Re)starts worker i (0 or 1). */
int ss_start_worker(int i);

/* A simulator call that must answer 2xx; the answer (new reference). */
json_t *ss_call(const struct th_sim *s, const char *method, const char *path, const char *body);
/* A UI user creates (id out) or updates an EspoCRM entity. */
void ss_ui_create(const char *attrs, char *id, size_t idlen);
void ss_ui_update(const char *id, const char *attrs);
/* The stored records. */
json_t *ss_espo_state(const char *id);
json_t *ss_advo_state(long long betnr);
/* A string attribute, "" if missing. */
const char *ss_str(const json_t *o, const char *k);
/* Polls until syncStatus is status and versionNumber passed after; the entity. */
json_t *ss_wait_status(const char *id, const char *status, long long after);
/* What a cron tick sends: sync_check for id. */
void ss_sync_check(const char *id, const char *reason);
/* A UI-created entity synced to clean; betnr and version out. */
void ss_synced_entity(const char *attrs, char *id, size_t idlen, long long *betnr,
                      long long *version);

/* Calls of a route, less those answered 401 (a call and its repeat with a fresh token are one
 * call of the budget). */
long ss_calls_of(const struct th_sim *s, const char *method, const char *route);
/* Calls the budgets count (less 401s), as a snapshot to diff: EspoCRM GET and PUT of the
 * entity, notifications; Advoware GET, PUT and POST Beteiligte; POST and PUT Kommunikation. */
struct ss_calls {
    long e_get, e_put, notif, a_get, a_put, a_post, k_post, k_put;
};
void ss_snapshot(struct ss_calls *c);
/* Fails the test unless the calls since before are want, counted once the calls stopped
 * (ss_settle). */
void ss_expect_calls(const struct ss_calls *before, struct ss_calls want);

/* Every API call a simulator counted. */
long ss_total_calls(const struct th_sim *s);
/* Waits until neither simulator counts another call for a while (a late run would show). */
void ss_settle(void);
/* Notifications whose message contains text. */
long ss_notifications_with(const char *text);
/* Waits until espocrm-sim delivered every queued webhook (a job run on request, then empty
 * queues) and the workers completed every message vmh-producer produced and every one
 * ss_sync_check sent (messages sent on ss.kp otherwise are not counted), then ss_settle: the
 * explicit signal that late runs are over, e.g. the no_change run of an own-write echo that got
 * through (SPEC §3.1). */
void ss_quiesce(void);
/* Injects count answers of status on method+route. */
void ss_fault(const struct th_sim *s, const char *method, const char *route, int status, int count);

#endif
