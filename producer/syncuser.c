/* syncuser.c: the sync user's id, asked of EspoCRM until it answers (see syncuser.h). */
#include "syncuser.h"

#include <stdbool.h>
#include <stdlib.h>

#include "espo.h"
#include "log.h"
#include "msg.h"

#define SYNCUSER_FIRST_RETRY_MS 1000
#define SYNCUSER_MAX_RETRY_MS   30000

struct syncuser {
    struct espo *espo;
    syncuser_fn fn;
    void *ud;
    uv_timer_t timer;
    uv_work_t work;
    bool running;  /* a lookup is on the thread pool */
    bool stopped;  /* stopped, or the id is known: no further lookups */
    bool closing;  /* the timer is being closed */
    long delay_ms; /* before the next attempt */
    int rc;
    char id[MSG_ID_MAX + 1];
    char err[256];
};

static void on_closed(uv_handle_t *h)
{
    struct syncuser *s = h->data;
    espo_free(s->espo);
    free(s);
}

static void on_lookup(uv_work_t *w)
{
    struct syncuser *s = w->data;
    s->err[0] = '\0';
    s->rc = espo_current_user(s->espo, s->id, sizeof s->id, s->err, sizeof s->err);
}

static void after_lookup(uv_work_t *w, int status);

static void on_timer(uv_timer_t *t)
{
    struct syncuser *s = t->data;
    if (s->stopped || s->running)
        return;
    s->running = true;
    if (uv_queue_work(t->loop, &s->work, on_lookup, after_lookup) != 0) {
        s->running = false;
        uv_timer_start(&s->timer, on_timer, (uint64_t)s->delay_ms, 0);
    }
}

static void after_lookup(uv_work_t *w, int status)
{
    struct syncuser *s = w->data;
    s->running = false;
    if (s->stopped) {
        if (s->closing) /* syncuser_stop() ran while the lookup was out: free now */
            uv_close((uv_handle_t *)&s->timer, on_closed);
        return;
    }
    if (status == 0 && s->rc == 0) {
        s->stopped = true;
        log_info("sync user known: its own-write echoes are dropped",
                 LOG_STR("sync_user_id", s->id));
        s->fn(s->id, s->ud);
        return;
    }
    log_warn("cannot learn the sync user from EspoCRM (GET /api/v1/App/user); retrying",
             LOG_STR("error", status == 0 ? s->err : "lookup cancelled"),
             LOG_INT("retry_in_ms", s->delay_ms));
    uv_timer_start(&s->timer, on_timer, (uint64_t)s->delay_ms, 0);
    s->delay_ms = s->delay_ms * 2 > SYNCUSER_MAX_RETRY_MS ? SYNCUSER_MAX_RETRY_MS : s->delay_ms * 2;
}

struct syncuser *syncuser_start(uv_loop_t *loop, const char *espo_url, const char *api_key,
                                long timeout_ms, const struct apistat *st, syncuser_fn fn, void *ud)
{
    struct syncuser *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!(s->espo = espo_new(espo_url, api_key, timeout_ms, st))) {
        free(s);
        return NULL;
    }
    s->fn = fn;
    s->ud = ud;
    s->delay_ms = SYNCUSER_FIRST_RETRY_MS;
    s->work.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, 0, 0);
    return s;
}

void syncuser_stop(struct syncuser *s)
{
    if (!s || s->closing)
        return;
    s->stopped = true;
    s->closing = true;
    uv_timer_stop(&s->timer);
    if (!s->running)
        uv_close((uv_handle_t *)&s->timer, on_closed);
}
