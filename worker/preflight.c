/* preflight.c: the worker's start-up check of the EspoCRM side (see preflight.h). */
#include "preflight.h"

#include "mapper.h"
#include "syncfields.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void problem(struct preflight *p, const char *fmt, ...)
{
    if (p->nproblems >= PREFLIGHT_MAX_PROBLEMS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->problems[p->nproblems++], sizeof p->problems[0], fmt, ap);
    va_end(ap);
}

/* The field `name` must exist with `type` (NULL: any type). */
static void need_field(const json_t *fields, const char *name, const char *type,
                       struct preflight *p)
{
    const json_t *f = json_object_get(fields, name);
    const char *has = json_string_value(json_object_get(f, "type"));
    if (!json_is_object(f))
        problem(p, "CBeteiligte lacks the field %s%s%s", name, type ? " of type " : "",
                type ? type : "");
    else if (type && (!has || strcmp(has, type) != 0))
        problem(p, "CBeteiligte field %s has type %s, needs %s", name, has ? has : "(none)", type);
}

void preflight_check_defs(const json_t *defs, struct preflight *p)
{
    if (!json_is_object(defs)) {
        problem(p, "EspoCRM has no entity CBeteiligte (metadata entityDefs.CBeteiligte is empty)");
        return;
    }
    const json_t *fields = json_object_get(defs, "fields");
    for (size_t i = 0; i < SYNCFIELDS_N; i++)
        need_field(fields, syncfields[i].name, syncfields[i].type, p);
    for (size_t i = 0; i < MAP_NFIELDS; i++) /* the Stammdaten; name is EspoCRM's own */
        need_field(fields, map_fields[i].espo, map_fields[i].maxlen ? "varchar" : "date", p);
    need_field(fields, "phoneNumber", "phone", p);
    need_field(fields, "emailAddress", "email", p);
    if (!json_is_true(json_object_get(defs, "optimisticConcurrencyControl")))
        problem(p, "CBeteiligte has optimisticConcurrencyControl off (an admin must switch it on)");

    const json_t *phone = json_object_get(fields, "phoneNumber");
    const json_t *list = json_object_get(phone, "typeList");
    size_t i;
    json_t *v;
    p->ntypes = 0;
    json_array_foreach(list, i, v)
    {
        const char *t = json_string_value(v);
        if (t && p->ntypes < PREFLIGHT_MAX_TYPES && strlen(t) < sizeof p->types[0])
            snprintf(p->types[p->ntypes++], sizeof p->types[0], "%s", t);
    }
    const char *def = json_string_value(json_object_get(phone, "defaultType"));
    snprintf(p->default_type, sizeof p->default_type, "%s",
             def         ? def
             : p->ntypes ? p->types[0]
                         : "");
    if (json_is_object(phone) && p->ntypes == 0)
        problem(p, "CBeteiligte phoneNumber has no typeList");
}

void preflight_check_user(const json_t *app_user, struct preflight *p)
{
    const char *id = json_string_value(json_object_get(json_object_get(app_user, "user"), "id"));
    if (!id || !*id || strlen(id) >= sizeof p->user_id)
        problem(p, "EspoCRM App/user names no user id");
    else
        snprintf(p->user_id, sizeof p->user_id, "%s", id);
    const char *perm =
        json_string_value(json_object_get(json_object_get(app_user, "acl"), "messagePermission"));
    p->can_message = perm && (strcmp(perm, "all") == 0 || strcmp(perm, "team") == 0);
}

int preflight_run(struct espo *c, struct preflight *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    long status = 0;
    json_t *out = NULL;
    if (espo_app_user(c, &status, &out, err, errlen) != 0)
        return -1;
    if (status != 200) {
        snprintf(err, errlen, "EspoCRM GET App/user answered %ld", status);
        json_decref(out);
        return -1;
    }
    preflight_check_user(out, p);
    json_decref(out);
    out = NULL;
    if (espo_metadata(c, "entityDefs.CBeteiligte", &status, &out, err, errlen) != 0)
        return -1;
    if (status != 200) {
        snprintf(err, errlen, "EspoCRM GET Metadata answered %ld", status);
        json_decref(out);
        return -1;
    }
    preflight_check_defs(out, p);
    json_decref(out);
    return 0;
}
