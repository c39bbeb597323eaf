/* httpd_thread.h: an httpd server on its own thread and libuv loop, for programs (and tests)
 * whose main thread is busy elsewhere: the worker's ops endpoint, kafka-mock's fault interface,
 * webhook receivers in tests. Handlers run on that thread.
 *
 * httpd_thread_stop() closes the server, joins the thread and frees everything (NULL is
 * ignored). */
#ifndef VMH_HTTPD_THREAD_H
#define VMH_HTTPD_THREAD_H

#include <stddef.h>

#include "httpd.h"

struct httpd_thread;

/* Registers the routes of srv (runs before the thread starts); 0, or -1 to give up. */
typedef int (*httpd_thread_setup_fn)(struct httpd *srv, void *ud);

/* Creates the server with opts (NULL = defaults), calls setup, listens on hostport and starts
 * the thread. The bound port into *bound_port (may be NULL). NULL with err on failure. */
struct httpd_thread *httpd_thread_start(const char *hostport, const struct httpd_opts *opts,
                                        httpd_thread_setup_fn setup, void *ud, int *bound_port,
                                        char *err, size_t errlen);
void httpd_thread_stop(struct httpd_thread *t);

#endif
