/* espocrm_entity.c: CBeteiligte's create, read, update and delete as EspoCRM 9.1.5 saves them
 * (SPEC §7.1, §8.1; recordings 02-04, 06-10 of tests/contract/espocrm-9.1.5): save rules, the
 * formula, optimistic concurrency, assignment, followers, the answers' form, and the /_sim/ui,
 * /_sim/seed and /_sim/state routes. Answers are new JSON the server frees.
 *
 * What EspoCRM does, as recorded:
 * - Answers: POST returns the attributes the save set plus the loaded lists and names (02 step
 *   2; emailAddress there is the primary's lower-case form); PUT returns the record as loaded
 *   before the save with the request's values over it: the …Data lists as sent (numbers
 *   sanitised, keys as given), phoneNumber updated when a new primary differs, emailAddress and
 *   the …IsOptedOut/…IsInvalid flags stale (03 steps 1, 16, 20); GET the stored record.
 * - Save (03, 08): every save bumps versionNumber and sets modifiedAt and modifiedById (even an
 *   empty PUT, 08 step 4); after a create modifiedById is null; PATCH = PUT (08 step 8).
 * - Formula (setup_metadata.json): creation → pending_sync (02 step 2); a change by anyone but
 *   the sync user of name, vorname, rechtsform, titel, anrede, bAnrede, zusatz, dateOfBirth,
 *   phoneNumber, emailAddress → dirty, v2 also of phoneNumberData/emailAddressData (10). An
 *   attribute is changed when the value sent differs from the stored one: a list sent without
 *   optOut/invalid differs (10 step 6); phoneNumber counts only when sent itself (04 step 23).
 *   v2 by default; v1 (01-09) via POST /_sim/config.
 * - Optimistic concurrency (04): X-Version-Number ≠ stored (non-numeric = 0) and a written
 *   attribute differs from its stored value → 409 {"values":{…},"versionNumber":N}, reason
 *   "modified", nothing saved; a phone list write compares phoneNumberIsOptedOut,
 *   phoneNumberIsInvalid, phoneNumber and the list (04 step 13). No header, no check.
 * - Assignment (06 step 13): the API user may assign only itself (403). A regular user's create
 *   assigns the creator when no one is given and the creator follows (07 step 10, 08 step 0).
 * - Webhook events (07): a create event carries the attributes the save set (lists as sent), an
 *   update event the changed attributes (not modifiedAt, versionNumber) plus
 *   modifiedById/modifiedByName when they changed, then id; a save that changes nothing sends
 *   nothing (07 step 13).
 *
 * Not recorded, assumed: the assignee of a regular user's create follows the record. */
#include "espocrm_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loaded with the record, not set by a save: a POST answer adds them (02 step 2). */
static const char *const LOADED[] = {
    "emailAddressData", "phoneNumberData", "createdByName", "modifiedByName", "assignedUserName",
    "teamsIds",         "teamsNames",      "isFollowed",    "followersIds",   "followersNames"};
/* The formula's fields (setup_metadata.json); v2 adds the two lists. */
static const char *const FORMULA_FIELDS[] = {
    "name",    "vorname", "rechtsform",  "titel",       "anrede",
    "bAnrede", "zusatz",  "dateOfBirth", "phoneNumber", "emailAddress"};
/* The phone and e-mail attributes: a save applies them as lists (create_list, update_list). */
static const char *const LIST_ATTRS[] = {"phoneNumberData", "emailAddressData", "phoneNumber",
                                         "emailAddress"};

static bool values_equal(const json_t *a, const json_t *b)
{
    if (!a || json_is_null(a))
        return !b || json_is_null(b);
    return b && json_equal((json_t *)a, (json_t *)b);
}

static bool is_sync_user(const struct esim *e, const char *id)
{
    return strcmp(id, e->conf.sync_user) == 0;
}

static bool followed(const json_t *ent, const char *user)
{
    return esim__in_json_list(json_object_get(ent, "followersIds"), user);
}

static void follow(struct esim *e, json_t *ent, const char *user)
{
    if (!user || followed(ent, user))
        return;
    json_array_append_new(json_object_get(ent, "followersIds"), json_string(user));
    json_object_set_new(json_object_get(ent, "followersNames"), user,
                        json_string(esim__user_name(e, user)));
}

/* The record as GET answers it to user. New object. */
static json_t *get_form(const struct esim *e, const json_t *ent, const char *user)
{
    json_t *out = json_object();
    for (size_t i = 0; i < esim__nattrs; i++) {
        if (esim__attr_dropped(e, esim__attrs[i]))
            continue;
        if (strcmp(esim__attrs[i], "isFollowed") == 0) {
            json_object_set_new(out, esim__attrs[i], json_boolean(followed(ent, user)));
            continue;
        }
        json_t *v = json_object_get(ent, esim__attrs[i]);
        json_object_set_new(out, esim__attrs[i], v ? json_deep_copy(v) : json_null());
    }
    return out;
}

/* ---- entities ----------------------------------------------------------------------------- */

static json_t *entity_blank(const struct esim *e, const char *id)
{
    json_t *ent = json_object();
    for (size_t i = 0; i < esim__nattrs; i++)
        if (strcmp(esim__attrs[i], "isFollowed") != 0)
            json_object_set_new(ent, esim__attrs[i], json_null());
    json_object_set_new(ent, "id", json_string(id));
    json_object_set_new(ent, "deleted", json_false());
    json_t *def = json_object_get(json_object_get(e->fields, "syncStatus"), "default");
    json_object_set(ent, "syncStatus", def ? def : json_null());
    json_object_set_new(ent, "emailAddressData", json_array());
    json_object_set_new(ent, "phoneNumberData", json_array());
    json_object_set_new(ent, "teamsIds", json_array());
    json_object_set_new(ent, "teamsNames", json_object());
    json_object_set_new(ent, "followersIds", json_array());
    json_object_set_new(ent, "followersNames", json_object());
    return ent;
}

/* The object of `values` keys in attribute order (isFollowed as given there). */
static json_t *ordered(const struct esim *e, const json_t *values)
{
    json_t *out = json_object();
    for (size_t i = 0; i < esim__nattrs; i++) {
        json_t *v = json_object_get(values, esim__attrs[i]);
        if (v && !esim__attr_dropped(e, esim__attrs[i]))
            json_object_set(out, esim__attrs[i], v);
    }
    return out;
}

enum { CREATE_QUIET = 1, CREATE_NO_ASSIGN = 2 };

/* 06 step 13: the API user may assign only itself; an update that keeps the stored assignee
 * passes (ent: the stored record, NULL for a create). */
static bool assignment_denied(const struct esim_actor *a, const json_t *in, const json_t *ent)
{
    const char *assigned = esim__jstr(in, "assignedUserId");
    if (a->kind != ESIM_ACTOR_API || !assigned || strcmp(assigned, a->id) == 0)
        return false;
    return !ent || !values_equal(json_object_get(ent, "assignedUserId"),
                                 json_object_get(in, "assignedUserId"));
}

static void respond_assignment_denied(struct httpd_req *req)
{
    esim__respond(req, 403, "Assignment failure: assigned user or team not allowed.", NULL);
}

/* Applies a create's phone or e-mail input to ent and the save's set attributes. */
static void create_list(const struct esim *e, json_t *ent, json_t *set, const json_t *in,
                        bool phone)
{
    const char *key = phone ? "phoneNumber" : "emailAddress";
    const char *list_key = phone ? "phoneNumberData" : "emailAddressData";
    json_t *sent = json_object_get(in, list_key), *full;
    if (sent) {
        full = esim__list_full(e, sent, phone);
        json_object_set(set, list_key, sent);
    } else if (esim__jstr(in, key) && *esim__jstr(in, key)) {
        json_t *one = json_pack("[{s:O,s:b}]", key, json_object_get(in, key), "primary", 1);
        full = esim__list_full(e, one, phone);
        json_decref(one);
    } else {
        return;
    }
    json_t *primary = json_array_get(full, 0);
    if (primary) /* the answer's emailAddress is the lower-case form (02 step 2) */
        json_object_set(set, key, json_object_get(primary, phone ? key : "lower"));
    esim__store_list(ent, full, phone);
}

/* EspoCRM's create as actor a. Answers req (if not NULL) and returns the stored record
 * (borrowed), or NULL after an error answer. */
static json_t *do_create(struct esim *e, struct httpd_req *req, const json_t *body,
                         const struct esim_actor *a, int flags)
{
    json_t *in = esim__filter_input(e, body);
    struct esim_vfail vf;
    if (esim__validate(e, in, true, &vf) != 0) {
        if (req)
            esim__respond_validation(req, &vf);
        json_decref(in);
        return NULL;
    }
    if (assignment_denied(a, in, NULL)) {
        if (req)
            respond_assignment_denied(req);
        json_decref(in);
        return NULL;
    }
    char id[24], now[24];
    esim__new_id(e, id, sizeof id);
    esim__now_text(e, now, sizeof now);
    json_t *ent = entity_blank(e, id);
    json_t *set = json_pack("{s:s,s:b}", "id", id, "deleted", 0); /* what the save set */
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (ESIM_IN(k, LIST_ATTRS))
            continue;
        json_object_set_new(ent, k, esim__coerce(e, k, v));
        json_object_set(set, k, v);
    }
    create_list(e, ent, set, in, true);
    create_list(e, ent, set, in, false);
    if (a->kind == ESIM_ACTOR_UI && !(flags & CREATE_NO_ASSIGN) &&
        !json_object_get(in, "assignedUserId"))
        json_object_set_new(set, "assignedUserId", json_string(a->id));
    const char *assigned = esim__jstr(set, "assignedUserId");
    if (assigned) {
        esim__user_seen(e, assigned);
        json_object_set_new(ent, "assignedUserId", json_string(assigned));
        json_object_set_new(ent, "assignedUserName", json_string(esim__user_name(e, assigned)));
        json_object_set_new(set, "assignedUserName", json_string(esim__user_name(e, assigned)));
    }
    if (a->kind == ESIM_ACTOR_UI && !(flags & CREATE_NO_ASSIGN)) { /* creator and assignee follow */
        follow(e, ent, a->id);
        follow(e, ent, assigned);
    }
    json_object_set_new(ent, "syncStatus", json_string("pending_sync")); /* formula */
    json_object_set_new(set, "syncStatus", json_string("pending_sync"));
    static const char *const stamps[] = {"createdAt", "modifiedAt", "streamUpdatedAt"};
    for (size_t i = 0; i < 3; i++) {
        json_object_set_new(ent, stamps[i], json_string(now));
        json_object_set_new(set, stamps[i], json_string(now));
    }
    static const char *const flag_names[] = {"emailAddressIsOptedOut", "emailAddressIsInvalid",
                                             "phoneNumberIsOptedOut", "phoneNumberIsInvalid"};
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(set, flag_names[i], json_false());
    json_object_set_new(ent, "createdById", json_string(a->id));
    json_object_set_new(ent, "createdByName", json_string(esim__actor_name(e, a)));
    json_object_set_new(set, "createdById", json_string(a->id));
    json_object_set_new(ent, "versionNumber", json_integer(1));
    json_object_set_new(set, "versionNumber", json_integer(1));
    json_object_set_new(set, "isFollowed", json_boolean(followed(ent, a->id)));
    json_object_set_new(e->entities, id, ent);

    if (!(flags & CREATE_QUIET)) {
        esim__emit(e, "create", ordered(e, set), a->id);
        json_t *data = assigned ? json_pack("{s:s,s:s}", "assignedUserId", assigned,
                                            "assignedUserName", esim__user_name(e, assigned))
                                : json_object();
        esim__note_new(e, a, "Create", NULL, ent, NULL, data);
    }
    if (req) { /* what the save set, and what EspoCRM loads with the record */
        for (size_t i = 0; i < sizeof LOADED / sizeof LOADED[0]; i++) {
            json_t *lv = json_object_get(ent, LOADED[i]);
            if (strcmp(LOADED[i], "isFollowed") != 0)
                json_object_set(set, LOADED[i], lv ? lv : json_null());
        }
        esim__respond(req, 200, NULL, ordered(e, set));
    }
    json_decref(set);
    json_decref(in);
    return ent;
}

/* PHP's (int) of the X-Version-Number header: leading digits, else 0 (04 step 17). */
static long long version_header(const char *h)
{
    return strtoll(h, NULL, 10);
}

/* The stored values of the written attributes that differ from what the write sets (04): a
 * list write stands for its flags, its primary value and itself. NULL when none differ. */
static json_t *occ_values(const struct esim *e, const json_t *ent, const json_t *in)
{
    json_t *values = json_object(), *v;
    const char *k;
    json_object_foreach((json_t *)in, k, v)
    {
        bool phone = strcmp(k, "phoneNumberData") == 0;
        if (phone || strcmp(k, "emailAddressData") == 0) {
            const char *key = phone ? "phoneNumber" : "emailAddress";
            json_t *full = esim__list_full(e, v, phone), *primary = json_array_get(full, 0);
            json_t *sent_primary = json_array_get(v, esim__list_primary(v));
            char attr[40];
            const char *flag_keys[] = {"optOut", "invalid"},
                       *flag_attrs[] = {"IsOptedOut", "IsInvalid"};
            for (int f = 0; f < 2; f++) {
                snprintf(attr, sizeof attr, "%s%s", key, flag_attrs[f]);
                json_t *sent = sent_primary ? json_object_get(sent_primary, flag_keys[f]) : NULL;
                if (!values_equal(json_object_get(ent, attr), sent))
                    json_object_set(values, attr, json_object_get(ent, attr));
            }
            json_t *pv = primary ? json_object_get(primary, key) : NULL;
            if (!values_equal(json_object_get(ent, key), pv))
                json_object_set(values, key, json_object_get(ent, key));
            if (!values_equal(json_object_get(ent, k), v))
                json_object_set(values, k, json_object_get(ent, k));
            json_decref(full);
            continue;
        }
        json_t *c = esim__coerce(e, k, v);
        if (!values_equal(json_object_get(ent, k), c))
            json_object_set(values, k, json_object_get(ent, k));
        json_decref(c);
    }
    if (json_object_size(values) == 0) {
        json_decref(values);
        return NULL;
    }
    return values;
}

/* An update's phone or e-mail input: the answer shows the list as sent; the derived value
 * changes only with a new primary (phoneNumber) or one that differs beyond case (emailAddress:
 * the answer shows it stale otherwise, 03 step 16). Returns whether the formula sees a change. */
static bool update_list(const struct esim *e, json_t *ent, json_t *ans, json_t *changed,
                        const json_t *in, bool phone)
{
    const char *key = phone ? "phoneNumber" : "emailAddress";
    const char *list_key = phone ? "phoneNumberData" : "emailAddressData";
    json_t *sent = json_object_get(in, list_key), *full;
    bool hit = false;
    if (sent) {
        json_object_set(ans, list_key, sent);
        if (!values_equal(json_object_get(ent, list_key), sent)) {
            json_object_set(changed, list_key, sent);
            hit = e->formula_v2;
        }
        full = esim__list_full(e, sent, phone);
    } else if (json_object_get(in, key)) {
        json_t *v = json_object_get(in, key);
        json_object_set(ans, key, v);
        if (values_equal(json_object_get(ent, key), v))
            return false;
        json_object_set(changed, key, v);
        /* the primary item takes the new value; an empty one removes it */
        json_t *items = json_deep_copy(json_object_get(ent, list_key));
        if (json_array_size(items) > 0)
            json_array_remove(items, 0);
        if (json_is_string(v) && json_string_length(v) > 0) {
            json_t *first = json_pack("{s:O,s:b}", key, v, "primary", 1);
            json_t *old = json_array_get(json_object_get(ent, list_key), 0);
            if (phone && old)
                json_object_set(first, "type", json_object_get(old, "type"));
            json_array_insert_new(items, 0, first);
        }
        full = esim__list_full(e, items, phone);
        json_decref(items);
        esim__store_list(ent, full, phone);
        return true;
    } else {
        return false;
    }
    json_t *primary = json_array_get(full, 0);
    if (primary) {
        const char *now = esim__jstr(primary, phone ? key : "lower");
        const char *old = esim__jstr(ent, key);
        char *old_lower = phone ? NULL : esim__lower_dup(old);
        bool differs = phone ? !old || strcmp(old, now) != 0
                             : !old || strcmp(old_lower ? old_lower : "", now) != 0;
        free(old_lower);
        if (differs) {
            json_object_set_new(ans, key, json_string(now));
            json_object_set_new(changed, key, json_string(now));
        }
    }
    esim__store_list(ent, full, phone);
    return hit;
}

/* Answers req, or only frees body when req is NULL (an update without a request). */
static void answer(struct httpd_req *req, int status, const char *reason, json_t *body)
{
    if (req)
        esim__respond(req, status, reason, body);
    else
        json_decref(body);
}

/* EspoCRM's update of ent as actor a (PUT and PATCH). Answers req; NULL: an update without a
 * request (the "ui_edit" fault), no X-Version-Number. */
static void do_update(struct esim *e, struct httpd_req *req, json_t *ent, const json_t *body,
                      const struct esim_actor *a)
{
    json_t *in = esim__filter_input(e, body);
    const char *header = req ? httpd_req_header(req, "X-Version-Number") : NULL;
    if (header) {
        json_int_t stored = json_integer_value(json_object_get(ent, "versionNumber"));
        json_t *values = version_header(header) != stored ? occ_values(e, ent, in) : NULL;
        if (values) {
            answer(req, 409, "modified",
                   json_pack("{s:o,s:I}", "values", values, "versionNumber", stored));
            json_decref(in);
            return;
        }
    }
    struct esim_vfail vf;
    if (esim__validate(e, in, false, &vf) != 0) {
        if (req)
            esim__respond_validation(req, &vf);
        json_decref(in);
        return;
    }
    if (assignment_denied(a, in, ent)) {
        if (req)
            respond_assignment_denied(req);
        json_decref(in);
        return;
    }
    json_t *ans = get_form(e, ent, a->id); /* as loaded before the save */
    json_t *changed = json_object(), *v;
    bool hit = false;
    const char *k;
    json_object_foreach(in, k, v)
    {
        if (ESIM_IN(k, LIST_ATTRS))
            continue;
        json_t *c = esim__coerce(e, k, v);
        json_object_set(ans, k, v);
        if (!values_equal(json_object_get(ent, k), c)) {
            json_object_set(changed, k, c);
            json_object_set(ent, k, c);
            hit |= ESIM_IN(k, FORMULA_FIELDS);
            if (strcmp(k, "assignedUserId") == 0) {
                const char *uid = json_string_value(c);
                json_t *name = uid ? json_string(esim__user_name(e, uid)) : json_null();
                esim__user_seen(e, uid);
                json_object_set(ent, "assignedUserName", name);
                json_object_set(ans, "assignedUserName", name);
                json_object_set(changed, "assignedUserName", name);
                json_decref(name);
            }
        }
        json_decref(c);
    }
    hit |= update_list(e, ent, ans, changed, in, true);
    hit |= update_list(e, ent, ans, changed, in, false);
    if (hit && !is_sync_user(e, a->id)) { /* the formula */
        if (strcmp(esim__jstr(ent, "syncStatus") ? esim__jstr(ent, "syncStatus") : "", "dirty") !=
            0) {
            json_object_set_new(ent, "syncStatus", json_string("dirty"));
            json_object_set_new(changed, "syncStatus", json_string("dirty"));
        }
        json_object_set_new(ans, "syncStatus", json_string("dirty"));
    }
    char now[24];
    esim__now_text(e, now, sizeof now);
    json_int_t version = json_integer_value(json_object_get(ent, "versionNumber")) + 1;
    json_object_set_new(ent, "versionNumber", json_integer(version));
    json_object_set_new(ans, "versionNumber", json_integer(version));
    json_object_set_new(ent, "modifiedAt", json_string(now));
    json_object_set_new(ans, "modifiedAt", json_string(now));
    const char *before = esim__jstr(ent, "modifiedById");
    if (!before || strcmp(before, a->id) != 0) {
        json_object_set_new(changed, "modifiedById", json_string(a->id));
        json_object_set_new(changed, "modifiedByName", json_string(esim__actor_name(e, a)));
    }
    json_object_set_new(ent, "modifiedById", json_string(a->id));
    json_object_set_new(ent, "modifiedByName", json_string(esim__actor_name(e, a)));
    json_object_set_new(ans, "modifiedById", json_string(a->id));
    json_object_set_new(ans, "modifiedByName", json_string(esim__actor_name(e, a)));
    json_object_set_new(ans, "isFollowed", json_boolean(followed(ent, a->id)));

    if (json_object_size(changed) > 0) { /* 07: the update record, then fieldUpdate.<field> */
        json_t *record = ordered(e, changed);
        json_object_set(record, "id", json_object_get(ent, "id"));
        esim__emit(e, "update", record, a->id);
        json_object_foreach(changed, k, v)
        {
            if (strcmp(k, "modifiedById") == 0 || strcmp(k, "modifiedByName") == 0)
                continue;
            char name[96];
            snprintf(name, sizeof name, "fieldUpdate.%s", k);
            esim__emit(e, name, json_pack("{s:O,s:O}", "id", json_object_get(ent, "id"), k, v),
                       a->id);
        }
    }
    json_decref(changed);
    json_decref(in);
    answer(req, 200, NULL, ans);
}

static void do_delete(struct esim *e, struct httpd_req *req, const char *id,
                      const struct esim_actor *a)
{
    if (!json_object_get(e->entities, id)) {
        esim__respond_not_found(req, id, false);
        return;
    }
    esim__emit(e, "delete", json_pack("{s:s}", "id", id), a->id);
    json_object_del(e->entities, id);
    esim__respond(req, 200, NULL, json_true());
}

/* ---- entity handlers ---------------------------------------------------------------------- */

/* The record {id} as GET answers it to user, or 404. */
static void respond_record(struct esim *e, struct httpd_req *req, const char *user)
{
    const char *id = httpd_req_param(req, "id");
    json_t *ent = json_object_get(e->entities, id);
    if (!ent)
        esim__respond_not_found(req, id, true);
    else
        esim__respond(req, 200, NULL, get_form(e, ent, user));
}

void esim__on_get(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    respond_record(e, req, a.id);
}

static void create_as(struct esim *e, struct httpd_req *req, const struct esim_actor *a)
{
    json_t *body = esim__body_object(req);
    if (body)
        do_create(e, req, body, a, 0);
    json_decref(body);
}

static void update_as(struct esim *e, struct httpd_req *req, const struct esim_actor *a)
{
    const char *id = httpd_req_param(req, "id");
    json_t *ent = json_object_get(e->entities, id);
    if (!ent) {
        esim__respond_not_found(req, id, false);
        return;
    }
    json_t *body = esim__body_object(req);
    if (body)
        do_update(e, req, ent, body, a);
    json_decref(body);
}

void esim__on_post(struct httpd_req *req, void *ud)
{
    struct esim_actor a;
    if (esim__authenticate(ud, req, &a))
        create_as(ud, req, &a);
}

void esim__on_put(struct httpd_req *req, void *ud)
{
    struct esim_actor a;
    if (esim__authenticate(ud, req, &a))
        update_as(ud, req, &a);
}

void esim__on_delete(struct httpd_req *req, void *ud)
{
    struct esim_actor a;
    if (esim__authenticate(ud, req, &a))
        do_delete(ud, req, httpd_req_param(req, "id"), &a);
}

/* ---- admin handlers ----------------------------------------------------------------------- */

void esim__on_ui_create(struct httpd_req *req, void *ud)
{
    struct esim_actor a;
    esim__ui_actor(ud, req, &a);
    create_as(ud, req, &a);
}

void esim__on_ui_update(struct httpd_req *req, void *ud)
{
    struct esim_actor a;
    esim__ui_actor(ud, req, &a);
    update_as(ud, req, &a);
}

/* The "ui_edit" fault (sim.h): the UI user ui-user updates the entity {id} of req with attrs
 * right before req is handled, exactly as PUT /_sim/ui/CBeteiligte/{id} would (the formula,
 * the webhook); an unknown entity or a refused edit changes nothing. */
void esim__ui_edit(struct httpd_req *req, const json_t *attrs, void *ud)
{
    struct esim *e = ud;
    const char *id = httpd_req_param(req, "id");
    json_t *ent = id ? json_object_get(e->entities, id) : NULL;
    if (!ent)
        return;
    struct esim_actor a = {.kind = ESIM_ACTOR_UI, .id = "ui-user"};
    esim__user_seen(e, a.id);
    do_update(e, NULL, ent, attrs, &a);
}

void esim__on_ui_delete(struct httpd_req *req, void *ud)
{
    struct esim_actor a;
    esim__ui_actor(ud, req, &a);
    do_delete(ud, req, httpd_req_param(req, "id"), &a);
}

/* POST /_sim/seed {"count":N}: N complete records in pending_sync, unassigned, no webhooks. */
void esim__on_seed(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    json_t *body = esim__body_object(req);
    if (!body)
        return;
    json_int_t count = json_integer_value(json_object_get(body, "count"));
    json_decref(body);
    if (count < 1 || count > 100000) {
        httpd_respond_error(req, 400, "count must be 1..100000");
        return;
    }
    static const char *const names[] = {"Mustermann", "Schmidt", "Müller", "Weber", "Fischer"};
    static const char *const vornamen[] = {"Max", "Erika", "Jürgen", "Anna", "Lena"};
    static const char *const formen[] = {"GmbH", "AG", "KG", "Privatperson"};
    struct esim_actor a = {.kind = ESIM_ACTOR_UI, .id = "ui-user"};
    json_t *ids = json_array();
    for (json_int_t i = 0; i < count; i++) {
        unsigned long r = sim_rand_below(e->sim, 1000000);
        char dob[16], phone[32], mail[96], zusatz[32];
        snprintf(dob, sizeof dob, "%04lu-%02lu-%02lu", 1940 + r % 60, 1 + r % 12, 1 + r % 28);
        snprintf(phone, sizeof phone, "+49 511 %06lu", r);
        snprintf(mail, sizeof mail, "seed%lld.%lu@example.com", (long long)i, r);
        snprintf(zusatz, sizeof zusatz, "Seed %lld", (long long)i);
        json_t *attrs =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:b}],s:[{s:s,s:b}]}", "name",
                      names[r % 5], "vorname", vornamen[(r / 5) % 5], "rechtsform", formen[r % 4],
                      "titel", r % 3 ? "" : "Dr.", "anrede", r % 2 ? "Herr" : "Frau", "bAnrede",
                      r % 2 ? "Sehr geehrter Herr" : "Sehr geehrte Frau", "zusatz", zusatz,
                      "dateOfBirth", dob, "phoneNumberData", "phoneNumber", phone, "type", "Office",
                      "primary", 1, "emailAddressData", "emailAddress", mail, "primary", 1);
        json_t *ent = do_create(e, NULL, attrs, &a, CREATE_QUIET | CREATE_NO_ASSIGN);
        json_decref(attrs);
        if (ent)
            json_array_append(ids, json_object_get(ent, "id"));
    }
    esim__respond(req, 200, NULL, json_pack("{s:o}", "ids", ids));
}

void esim__on_state_all(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    json_t *list = json_array(), *ent;
    const char *id;
    json_object_foreach(e->entities, id, ent)
        json_array_append_new(list, get_form(e, ent, e->conf.sync_user));
    esim__respond(req, 200, NULL, list);
}

void esim__on_state_one(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    respond_record(e, req, e->conf.sync_user);
}
