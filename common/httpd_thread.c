/* httpd_thread.c: an httpd server on its own thread (see httpd_thread.h). */
#include "httpd_thread.h"

#include <pthread.h>
#include <stdlib.h>

#include "util.h"

struct httpd_thread {
    uv_loop_t loop;
    uv_async_t stop;
    struct httpd *srv;
    pthread_t thread;
};

static void on_stop(uv_async_t *a)
{
    struct httpd_thread *t = a->data;
    httpd_close(t->srv);
    uv_close((uv_handle_t *)&t->stop, NULL);
}

static void *run(void *arg)
{
    struct httpd_thread *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct httpd_thread *httpd_thread_start(const char *hostport, const struct httpd_opts *opts,
                                        httpd_thread_setup_fn setup, void *ud, int *bound_port,
                                        char *err, size_t errlen)
{
    struct httpd_thread *t = calloc(1, sizeof *t);
    if (!t || uv_loop_init(&t->loop) != 0) {
        util_err(err, errlen, "out of memory");
        free(t);
        return NULL;
    }
    t->srv = httpd_new(&t->loop, opts);
    if (!t->srv || (setup && setup(t->srv, ud) != 0)) {
        util_err(err, errlen, "cannot set up the routes");
        goto err_loop;
    }
    if (httpd_listen(t->srv, hostport, bound_port, err, errlen) != 0)
        goto err_loop;
    uv_async_init(&t->loop, &t->stop, on_stop);
    t->stop.data = t;
    if (pthread_create(&t->thread, NULL, run, t) != 0) {
        util_err(err, errlen, "cannot start the server thread");
        uv_close((uv_handle_t *)&t->stop, NULL);
        goto err_loop;
    }
    return t;
err_loop:
    httpd_close(t->srv);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    free(t);
    return NULL;
}

void httpd_thread_stop(struct httpd_thread *t)
{
    if (!t)
        return;
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    uv_loop_close(&t->loop);
    free(t);
}
