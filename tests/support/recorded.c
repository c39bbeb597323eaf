/* recorded.c: reads the recorded EspoCRM 9.1.5 answers for tests (see recorded.h). A case is a
 * jansson object the caller owns; deliveries point into it. */
#include "recorded.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *rec_case(const char *file)
{
    char path[1024];
    json_error_t e;
    snprintf(path, sizeof path, "%s%s", REC_DIR, file);
    json_t *c = json_load_file(path, 0, &e);
    if (!c)
        fail_msg("recorded %s: %s (line %d)", file, e.text, e.line);
    return c;
}

json_t *rec_response_body(const char *file, size_t step)
{
    json_t *c = rec_case(file);
    json_t *s = json_array_get(json_object_get(c, "steps"), step);
    json_t *body = json_object_get(json_object_get(s, "response"), "body");
    if (!body) {
        json_decref(c);
        fail_msg("%s: step %zu has no response body", file, step);
    }
    json_incref(body);
    json_decref(c);
    return body;
}

/* The string at key of o; fails the test when it is not one. */
static const char *string_at(json_t *o, const char *key, const char *where)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("recorded %s: no string \"%s\"", where, key);
    return s;
}

/* The path of a URL ("http://127.0.0.1:8099/hook/update" -> "/hook/update"), or "". */
static const char *url_path(const char *url)
{
    const char *host = strstr(url, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    return path ? path : "";
}

static struct rec_delivery delivery_of(json_t *c, json_t *d)
{
    struct rec_delivery r = {0};
    r.path = string_at(d, "path", "delivery");
    json_t *headers = json_object_get(d, "headers");
    r.signature = string_at(headers, "Signature", r.path);
    r.x_signature = string_at(headers, "X-Signature", r.path);
    r.body = string_at(d, "body_raw", r.path);
    r.len = json_string_length(json_object_get(d, "body_raw"));
    const char *length = string_at(headers, "Content-Length", r.path);
    if (strtoul(length, NULL, 10) != r.len)
        fail_msg("recorded %s: body_raw has %zu bytes, Content-Length %s", r.path, r.len, length);

    const char *name;
    json_t *wh;
    json_object_foreach(json_object_get(c, "webhooks"), name, wh)
    {
        const char *url = json_string_value(json_object_get(wh, "url"));
        if (url && strcmp(url_path(url), r.path) == 0) {
            r.webhook_id = string_at(wh, "id", name);
            r.secret_key = string_at(wh, "secretKey", name);
            return r;
        }
    }
    fail_msg("recorded %s: no webhook with this path", r.path);
    return r;
}

struct rec_delivery rec_delivery(json_t *c, const char *path)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(c, "deliveries"), i, d)
    {
        const char *p = json_string_value(json_object_get(d, "path"));
        if (p && strcmp(p, path) == 0)
            return delivery_of(c, d);
    }
    fail_msg("no recorded delivery to %s", path);
    return (struct rec_delivery){0};
}

size_t rec_deliveries(json_t *c, struct rec_delivery *out, size_t max)
{
    json_t *all = json_object_get(c, "deliveries");
    size_t n = json_array_size(all);
    if (n == 0 || n > max)
        fail_msg("%zu recorded deliveries, room for 1 to %zu", n, max);
    for (size_t i = 0; i < n; i++)
        out[i] = delivery_of(c, json_array_get(all, i));
    return n;
}
