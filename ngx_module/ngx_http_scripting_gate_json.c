
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * JSON: variables read from the JSON request body by JSON Pointer
 * (RFC 6901), and the error body of local rejections.
 *
 * jansson allocates through nginx: while a pool is set with
 * ngx_http_scripting_gate_json_use_pool(), its memory comes from that
 * pool and goes with it.  Documents are only built and read inside such
 * a bracket; outside one, jansson falls back to nginx's heap allocator.
 *
 * A request body is parsed once, in a pool of its own and under a memory
 * budget (scripting_json_max_memory): a small document of many small
 * values costs jansson tens of times its size.  The values of every
 * scripting_json_var are copied out into the request's pool at once and
 * the document goes with its pool, so that what a hostile body costs is
 * bounded and is not kept for the request's lifetime.
 */


#include "ngx_http_scripting_gate_module.h"
#include "ngx_http_scripting_gate_util.h"
#include <jansson.h>


typedef struct {
    ngx_uint_t               slot;       /* in the request's values */
    ngx_array_t              tokens;     /* ngx_str_t, unescaped */
    ngx_str_t                pointer;
} ngx_http_scripting_gate_json_var_t;


static ngx_int_t ngx_http_scripting_gate_json_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_variable_value_t *ngx_http_scripting_gate_json_body(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_json_parse(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_variable_value_t *values);
static ngx_int_t ngx_http_scripting_gate_json_value(ngx_http_request_t *r,
    json_t *json, ngx_http_scripting_gate_json_var_t *jv,
    ngx_http_variable_value_t *v);
static void *ngx_http_scripting_gate_json_malloc(size_t size);
static void ngx_http_scripting_gate_json_free(void *p);


static ngx_pool_t  *ngx_http_scripting_gate_json_pool;
static ngx_uint_t   ngx_http_scripting_gate_json_ready;

/* the memory a parse may still take, while it is limited */
static size_t       ngx_http_scripting_gate_json_left;
static ngx_uint_t   ngx_http_scripting_gate_json_limited;
static ngx_uint_t   ngx_http_scripting_gate_json_spent;


void
ngx_http_scripting_gate_json_use_pool(ngx_pool_t *pool)
{
    if (!ngx_http_scripting_gate_json_ready) {
        json_set_alloc_funcs(ngx_http_scripting_gate_json_malloc,
                             ngx_http_scripting_gate_json_free);
        ngx_http_scripting_gate_json_ready = 1;
    }

    ngx_http_scripting_gate_json_pool = pool;
    ngx_http_scripting_gate_json_limited = 0;
}


static void *
ngx_http_scripting_gate_json_malloc(size_t size)
{
    if (ngx_http_scripting_gate_json_pool == NULL) {
        return ngx_alloc(size, ngx_cycle->log);
    }

    if (ngx_http_scripting_gate_json_limited) {

        /* jansson fails the parse on its own when an allocation fails */

        if (size > ngx_http_scripting_gate_json_left) {
            ngx_http_scripting_gate_json_spent = 1;
            return NULL;
        }

        ngx_http_scripting_gate_json_left -= size;
    }

    return ngx_palloc(ngx_http_scripting_gate_json_pool, size);
}


static void
ngx_http_scripting_gate_json_free(void *p)
{
    if (ngx_http_scripting_gate_json_pool == NULL) {
        ngx_free(p);
        return;
    }

    /*
     * the rest goes with its pool; a large block (a growing string or
     * array) is given back at once, still counted in the budget
     */
    (void) ngx_pfree(ngx_http_scripting_gate_json_pool, p);
}


char *
ngx_http_scripting_gate_json_var(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_scripting_gate_main_conf_t *gmcf = conf;

    u_char                               *p, *last, *d;
    ngx_str_t                            *value, name, *token;
    ngx_http_variable_t                  *var;
    ngx_http_scripting_gate_json_var_t   *jv, **jvp;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variable name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len && value[2].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid JSON pointer \"%V\", "
                           "it must be empty or start with \"/\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    jv = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_json_var_t));
    if (jv == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&jv->tokens, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    jv->pointer = value[2];
    jv->slot = gmcf->json_vars.nelts;

    /* "/a~1b/~0c" is "a/b", "~c" (RFC 6901, section 4) */

    p = value[2].data;
    last = p + value[2].len;

    while (p < last) {
        p++;

        token = ngx_array_push(&jv->tokens);
        if (token == NULL) {
            return NGX_CONF_ERROR;
        }

        token->data = ngx_pnalloc(cf->pool, last - p + 1);
        if (token->data == NULL) {
            return NGX_CONF_ERROR;
        }

        d = token->data;

        while (p < last && *p != '/') {
            if (*p == '~') {
                if (p + 1 < last && (p[1] == '0' || p[1] == '1')) {
                    *d++ = (p[1] == '0') ? '~' : '/';
                    p += 2;
                    continue;
                }

                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid JSON pointer \"%V\", \"~\" must "
                                   "be followed by \"0\" or \"1\"", &value[2]);
                return NGX_CONF_ERROR;
            }

            *d++ = *p++;
        }

        token->len = d - token->data;
    }

    name.len = value[1].len - 1;
    name.data = value[1].data + 1;

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    if (var->get_handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "variable \"%V\" is already defined", &value[1]);
        return NGX_CONF_ERROR;
    }

    var->get_handler = ngx_http_scripting_gate_json_variable;
    var->data = (uintptr_t) jv;

    jvp = ngx_array_push(&gmcf->json_vars);
    if (jvp == NULL) {
        return NGX_CONF_ERROR;
    }

    *jvp = jv;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_scripting_gate_json_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_scripting_gate_json_var_t  *jv = (void *) data;

    ngx_http_variable_value_t  *values;

    values = ngx_http_scripting_gate_json_body(r);

    if (values == NULL || values[jv->slot].not_found) {
        v->not_found = 1;
        return NGX_OK;
    }

    *v = values[jv->slot];

    return NGX_OK;
}


/*
 * The values of every scripting_json_var, read from the request body once
 * per request; NULL when there are none (yet).
 */

static ngx_http_variable_value_t *
ngx_http_scripting_gate_json_body(ngx_http_request_t *r)
{
    ngx_int_t                             rc;
    ngx_uint_t                            i;
    ngx_pool_t                           *pool;
    ngx_http_variable_value_t            *values;
    ngx_http_scripting_gate_ctx_t        *ctx;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    r = r->main;

    if (r->request_body == NULL || r->reading_body) {
        /* not read (yet): the variable is empty, and may be later */
        return NULL;
    }

    ctx = ngx_http_scripting_gate_get_ctx(r, 1);
    if (ctx == NULL) {
        return NULL;
    }

    if (ctx->json_parsed) {
        return ctx->json;
    }

    ctx->json_parsed = 1;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);

    values = ngx_pcalloc(r->pool, gmcf->json_vars.nelts
                                  * sizeof(ngx_http_variable_value_t));
    if (values == NULL) {
        return NULL;
    }

    for (i = 0; i < gmcf->json_vars.nelts; i++) {
        values[i].not_found = 1;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, r->connection->log);
    if (pool == NULL) {
        return NULL;
    }

    rc = ngx_http_scripting_gate_json_parse(r, pool, values);

    ngx_destroy_pool(pool);

    if (rc != NGX_OK) {
        return NULL;
    }

    ctx->json = values;

    return values;
}


/* the body parsed in "pool", under the budget; its values into "values" */

static ngx_int_t
ngx_http_scripting_gate_json_parse(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_variable_value_t *values)
{
    off_t                                  len;
    u_char                                *data, *p;
    size_t                                 size;
    ssize_t                                n;
    json_t                                *json;
    ngx_int_t                              rc;
    ngx_buf_t                             *b;
    ngx_uint_t                             i;
    ngx_chain_t                           *cl;
    json_error_t                           err;
    ngx_http_scripting_gate_json_var_t   **jvp;
    ngx_http_scripting_gate_loc_conf_t    *glcf;
    ngx_http_scripting_gate_log_value_t    lv;
    ngx_http_scripting_gate_main_conf_t   *gmcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    if (len > (off_t) glcf->json_max_size) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "scripting_json_var: request body of %O bytes "
                      "is not parsed, it is larger than "
                      "scripting_json_max_size (%uz bytes)",
                      len, glcf->json_max_size);
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && ngx_buf_in_memory(cl->buf)) {
        data = cl->buf->pos;

    } else {
        data = ngx_pnalloc(pool, (size_t) len);
        if (data == NULL) {
            return NGX_ERROR;
        }

        p = data;

        for ( /* void */ ; cl; cl = cl->next) {
            b = cl->buf;
            size = (size_t) ngx_buf_size(b);

            if (ngx_buf_in_memory(b)) {
                p = ngx_cpymem(p, b->pos, size);
                continue;
            }

            n = ngx_read_file(b->file, p, size, b->file_pos);

            if (n != (ssize_t) size) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "scripting_json_var: could not read the "
                              "request body from \"%V\"", &b->file->name);
                return NGX_ERROR;
            }

            p += size;
        }
    }

    ngx_http_scripting_gate_json_use_pool(pool);

    ngx_http_scripting_gate_json_limited = 1;
    ngx_http_scripting_gate_json_left = glcf->json_max_memory;
    ngx_http_scripting_gate_json_spent = 0;

    json = json_loadb((char *) data, (size_t) len, 0, &err);

    rc = NGX_OK;

    if (json) {
        gmcf = ngx_http_get_module_main_conf(r,
                                             ngx_http_scripting_gate_module);
        jvp = gmcf->json_vars.elts;

        for (i = 0; rc == NGX_OK && i < gmcf->json_vars.nelts; i++) {
            rc = ngx_http_scripting_gate_json_value(r, json, jvp[i],
                                                    &values[i]);
        }
    }

    ngx_http_scripting_gate_json_use_pool(NULL);

    if (ngx_http_scripting_gate_json_spent) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "scripting_json_var: request body of %O bytes "
                      "is not parsed, it needs more memory than "
                      "scripting_json_max_memory (%uz bytes)",
                      len, glcf->json_max_memory);
        return NGX_DECLINED;
    }

    if (json == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "scripting_json_var: request body is not JSON: %V "
                      "at byte %d",
                      ngx_http_scripting_gate_log_value(&lv,
                                (u_char *) err.text, ngx_strlen(err.text)),
                      err.position);
        return NGX_DECLINED;
    }

    return rc;
}


/*
 * The value the pointer selects, copied into the request's pool: a string
 * as it is, anything else as compact JSON.  Called inside the parse's
 * bracket.
 */

static ngx_int_t
ngx_http_scripting_gate_json_value(ngx_http_request_t *r, json_t *json,
    ngx_http_scripting_gate_json_var_t *jv, ngx_http_variable_value_t *v)
{
    char        *s;
    u_char      *data;
    size_t       len;
    ngx_int_t    n;
    ngx_str_t   *token;
    ngx_uint_t   i;

    token = jv->tokens.elts;

    for (i = 0; json && i < jv->tokens.nelts; i++) {

        if (json_is_object(json)) {
            json = json_object_getn(json, (char *) token[i].data,
                                    token[i].len);
            continue;
        }

        if (json_is_array(json)) {
            n = ngx_atoi(token[i].data, token[i].len);

            /* no leading zeros, no "-" (the end of the array) */
            if (n == NGX_ERROR || (token[i].len > 1 && token[i].data[0] == '0'))
            {
                return NGX_OK;
            }

            json = json_array_get(json, n);
            continue;
        }

        return NGX_OK;
    }

    if (json == NULL || json_is_null(json)) {
        return NGX_OK;
    }

    if (json_is_string(json)) {
        data = (u_char *) json_string_value(json);
        len = json_string_length(json);

        /*
         * "\r" and "\n" escapes decode to CR and LF, which would let the
         * value end a header line wherever a configuration puts it in one
         * (add_header, proxy_set_header): such a value is not given
         */

        if (ngx_strlchr(data, data + len, CR)
            || ngx_strlchr(data, data + len, LF))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "scripting_json_var: the value at \"%V\" holds "
                          "CR or LF, the variable is empty", &jv->pointer);
            return NGX_OK;
        }

    } else {
        s = json_dumps(json, JSON_COMPACT|JSON_ENCODE_ANY);

        if (s == NULL) {
            /* the budget is spent: the caller says so */
            return ngx_http_scripting_gate_json_spent ? NGX_OK : NGX_ERROR;
        }

        data = (u_char *) s;
        len = ngx_strlen(s);
    }

    /* the document goes with its pool */

    v->data = ngx_pnalloc(r->pool, len + 1);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(v->data, data, len);
    v->data[len] = '\0';
    v->len = len;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * An error in the upstream's own shape, so that its clients handle the
 * gateway's answers unchanged; contextId is the request's id.
 */

ngx_int_t
ngx_http_scripting_gate_json_error(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *message, ngx_str_t *context_id, ngx_str_t *out)
{
    char    *s;
    json_t  *o;

    ngx_http_scripting_gate_json_use_pool(r->pool);

    o = json_pack("{s:s, s:s, s:i, s:s%, s:[], s:[]}",
                  "message", message,
                  "code", code,
                  "status", (json_int_t) status,
                  "contextId", (char *) context_id->data, context_id->len,
                  "details",
                  "errors");

    s = o ? json_dumps(o, JSON_COMPACT|JSON_PRESERVE_ORDER) : NULL;

    ngx_http_scripting_gate_json_use_pool(NULL);

    if (s == NULL) {
        return NGX_ERROR;
    }

    out->data = (u_char *) s;
    out->len = ngx_strlen(s);

    return NGX_OK;
}
