/*
 * config.c — reading a mechanism's config object against its param table.
 *
 * The table (attn_param[]) is the single source of keys, types, defaults and
 * bounds: `attn list`, the JSON schemas and these getters all read it.  A key
 * that is present but null means "the reference default", as None does in
 * the reference constructors.
 */
#include "attn_internal.h"

#include <math.h>
#include <string.h>

static const attn_param *find_param(const attn_cfg *c, const char *key) {
    for (const attn_param *p = c->params; p && p->key; p++)
        if (strcmp(p->key, key) == 0) return p;
    return NULL;
}

attn_status attn__cfg_check_keys(const attn_cfg *c) {
    if (!c->obj) return ATTN_OK;
    if (!json_is_object(c->obj))
        return attn__err(c->err, ATTN_E_CONFIG, "%s: config must be a JSON object", c->mech);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->obj, key, v) {
        (void)v;
        if (!find_param(c, key)) {
            char known[160] = "";
            size_t n = 0;
            for (const attn_param *p = c->params; p && p->key && n < sizeof known - 1; p++)
                n += (size_t)snprintf(known + n, sizeof known - n, n ? ", %s" : "%s", p->key);
            return attn__err(c->err, ATTN_E_CONFIG, "%s: unknown config key '%.48s' (known: %s)",
                             c->mech, key, n ? known : "none");
        }
    }
    /* Required keys must be present and non-null. */
    for (const attn_param *p = c->params; p && p->key; p++) {
        if (p->def) continue;
        json_t *x = json_object_get(c->obj, p->key);
        if (!x || json_is_null(x))
            return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' is required", c->mech,
                             p->key);
    }
    return ATTN_OK;
}

/* The value for key: from the config, else the table's default (parsed
 * once per call; defaults are tiny).  *owned gets a reference to decref. */
static attn_status value_of(const attn_cfg *c, const char *key, const attn_param **pp,
                            json_t **val, json_t **owned) {
    *owned = NULL;
    const attn_param *p = find_param(c, key);
    if (!p)
        return attn__err(c->err, ATTN_E_INTERNAL, "%s: no param '%s' in the table", c->mech, key);
    *pp = p;
    json_t *v = c->obj ? json_object_get(c->obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (!p->def) return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' is required", c->mech, key);
        *owned = json_loads(p->def, JSON_DECODE_ANY, NULL);
        if (!*owned) return attn__err(c->err, ATTN_E_INTERNAL, "%s: bad default for '%s'", c->mech, key);
        v = *owned;
    }
    *val = v;
    return ATTN_OK;
}

static attn_status range_check(const attn_cfg *c, const attn_param *p, double x) {
    if ((p->min != 0 || p->max != 0) && (x < p->min || x > p->max))
        return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' = %g is outside [%g, %g]",
                         c->mech, p->key, x, p->min, p->max);
    return ATTN_OK;
}

attn_status attn__cfg_int(const attn_cfg *c, const char *key, int64_t *out, bool *is_null) {
    const attn_param *p;
    json_t *v, *owned;
    attn_status st = value_of(c, key, &p, &v, &owned);
    if (st) return st;
    if (is_null) *is_null = json_is_null(v);
    if (json_is_null(v)) {
        *out = 0;
    } else if (json_is_integer(v)) {
        *out = json_integer_value(v);
        st = range_check(c, p, (double)*out);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9.0e15) {
        *out = (int64_t)json_real_value(v); /* 4.0 is an integer, as int(4.0) is */
        st = range_check(c, p, (double)*out);
    } else {
        st = attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must be an integer", c->mech, key);
    }
    json_decref(owned);
    return st;
}

attn_status attn__cfg_float(const attn_cfg *c, const char *key, double *out, bool *is_null) {
    const attn_param *p;
    json_t *v, *owned;
    attn_status st = value_of(c, key, &p, &v, &owned);
    if (st) return st;
    if (is_null) *is_null = json_is_null(v);
    if (json_is_null(v)) {
        *out = 0;
    } else if (json_is_number(v) && isfinite(json_number_value(v))) {
        *out = json_number_value(v);
        st = range_check(c, p, *out);
    } else {
        st = attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must be a number", c->mech, key);
    }
    json_decref(owned);
    return st;
}

attn_status attn__cfg_bool(const attn_cfg *c, const char *key, bool *out) {
    const attn_param *p;
    json_t *v, *owned;
    attn_status st = value_of(c, key, &p, &v, &owned);
    if (st) return st;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        st = attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must be true or false", c->mech, key);
    json_decref(owned);
    return st;
}

attn_status attn__cfg_string(const attn_cfg *c, const char *key, const char **out) {
    const attn_param *p = find_param(c, key);
    if (!p) return attn__err(c->err, ATTN_E_INTERNAL, "%s: no param '%s' in the table", c->mech, key);
    json_t *v = c->obj ? json_object_get(c->obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (!p->def) return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' is required", c->mech, key);
        /* String defaults are stored bare ("mean"); "null" means None. */
        *out = strcmp(p->def, "null") == 0 ? NULL : p->def;
        return ATTN_OK;
    }
    if (!json_is_string(v))
        return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must be a string", c->mech, key);
    *out = json_string_value(v);
    if (p->choices) {
        size_t n = strlen(*out);
        for (const char *ch = p->choices; *ch;) {
            const char *bar = strchr(ch, '|');
            size_t len = bar ? (size_t)(bar - ch) : strlen(ch);
            if (len == n && strncmp(ch, *out, n) == 0) return ATTN_OK;
            ch += len + (bar ? 1 : 0);
        }
        return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' = '%.32s' is not one of %s",
                         c->mech, key, *out, p->choices);
    }
    return ATTN_OK;
}

attn_status attn__cfg_int_list(const attn_cfg *c, const char *key, int64_t *out, int cap, int *n) {
    const attn_param *p;
    json_t *v, *owned;
    attn_status st = value_of(c, key, &p, &v, &owned);
    if (st) return st;
    if (json_is_null(v)) {
        *n = -1;
    } else if (!json_is_array(v) || json_array_size(v) > (size_t)cap) {
        st = attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must be a list of at most %d integers",
                       c->mech, key, cap);
    } else {
        *n = (int)json_array_size(v);
        for (int i = 0; i < *n && !st; i++) {
            json_t *x = json_array_get(v, (size_t)i);
            if (!json_is_integer(x))
                st = attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must hold integers", c->mech, key);
            else {
                out[i] = json_integer_value(x);
                st = range_check(c, p, (double)out[i]);
            }
        }
    }
    json_decref(owned);
    return st;
}

attn_status attn__cfg_object(const attn_cfg *c, const char *key, const json_t **out) {
    const attn_param *p = find_param(c, key);
    if (!p) return attn__err(c->err, ATTN_E_INTERNAL, "%s: no param '%s' in the table", c->mech, key);
    json_t *v = c->obj ? json_object_get(c->obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (!p->def) return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' is required", c->mech, key);
        *out = NULL;
        return ATTN_OK;
    }
    if (!json_is_object(v) && !json_is_string(v))
        return attn__err(c->err, ATTN_E_CONFIG, "%s: config key '%s' must be an object", c->mech, key);
    *out = v;
    return ATTN_OK;
}
