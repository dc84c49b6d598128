
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * JSON: variables read from the JSON request body by JSON Pointer
 * (RFC 6901), and the error body of local rejections.
 *
 * jansson allocates through nginx: while a request pool is set with
 * ngx_http_scripting_gate_json_use_pool(), its memory comes from that
 * pool and goes with it, so a hostile body can cost no more than the
 * request's own lifetime.  Documents are only built and read inside such
 * a bracket; outside one, jansson falls back to nginx's heap allocator.
 */


#include "ngx_http_scripting_gate_module.h"
#include "ngx_http_scripting_gate_util.h"
#include <jansson.h>


/* bodies above this size are not parsed: their variables are empty */
#define NGX_HTTP_SCRIPTING_GATE_JSON_MAX  (1024 * 1024)


typedef struct {
    ngx_int_t                index;
    ngx_array_t              tokens;     /* ngx_str_t, unescaped */
    ngx_str_t                pointer;
} ngx_http_scripting_gate_json_var_t;


static ngx_int_t ngx_http_scripting_gate_json_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static json_t *ngx_http_scripting_gate_json_body(ngx_http_request_t *r);
static void *ngx_http_scripting_gate_json_malloc(size_t size);
static void ngx_http_scripting_gate_json_free(void *p);


static ngx_pool_t  *ngx_http_scripting_gate_json_pool;
static ngx_uint_t   ngx_http_scripting_gate_json_ready;


void
ngx_http_scripting_gate_json_use_pool(ngx_pool_t *pool)
{
    if (!ngx_http_scripting_gate_json_ready) {
        json_set_alloc_funcs(ngx_http_scripting_gate_json_malloc,
                             ngx_http_scripting_gate_json_free);
        ngx_http_scripting_gate_json_ready = 1;
    }

    ngx_http_scripting_gate_json_pool = pool;
}


static void *
ngx_http_scripting_gate_json_malloc(size_t size)
{
    if (ngx_http_scripting_gate_json_pool) {
        return ngx_palloc(ngx_http_scripting_gate_json_pool, size);
    }

    return ngx_alloc(size, ngx_cycle->log);
}


static void
ngx_http_scripting_gate_json_free(void *p)
{
    /* pool memory goes with its pool */
    if (ngx_http_scripting_gate_json_pool == NULL) {
        ngx_free(p);
    }
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

    char        *s;
    json_t      *json;
    ngx_int_t    n;
    ngx_str_t   *token;
    ngx_uint_t   i;

    v->not_found = 1;

    json = ngx_http_scripting_gate_json_body(r);
    if (json == NULL) {
        return NGX_OK;
    }

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
        v->data = (u_char *) json_string_value(json);
        v->len = json_string_length(json);

        /*
         * "\r" and "\n" escapes decode to CR and LF, which would let the
         * value end a header line wherever a configuration puts it in one
         * (add_header, proxy_set_header): such a value is not given
         */

        if (ngx_strlchr(v->data, v->data + v->len, CR)
            || ngx_strlchr(v->data, v->data + v->len, LF))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "scripting_json_var: the value at \"%V\" holds "
                          "CR or LF, the variable is empty", &jv->pointer);
            return NGX_OK;
        }

    } else {
        ngx_http_scripting_gate_json_use_pool(r->pool);
        s = json_dumps(json, JSON_COMPACT|JSON_ENCODE_ANY);
        ngx_http_scripting_gate_json_use_pool(NULL);

        if (s == NULL) {
            return NGX_ERROR;
        }

        v->data = (u_char *) s;
        v->len = ngx_strlen(s);
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the request body as a JSON document, parsed once per request */

static json_t *
ngx_http_scripting_gate_json_body(ngx_http_request_t *r)
{
    off_t                           len;
    u_char                         *data, *p;
    size_t                          size;
    ssize_t                         n;
    ngx_buf_t                      *b;
    ngx_chain_t                    *cl;
    json_error_t                    err;
    ngx_http_scripting_gate_ctx_t  *ctx;

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

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NULL;
    }

    if (len > NGX_HTTP_SCRIPTING_GATE_JSON_MAX) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "scripting_json_var: request body of %O bytes "
                      "is not parsed", len);
        return NULL;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && ngx_buf_in_memory(cl->buf)) {
        data = cl->buf->pos;

    } else {
        data = ngx_pnalloc(r->pool, (size_t) len);
        if (data == NULL) {
            return NULL;
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
                return NULL;
            }

            p += size;
        }
    }

    ngx_http_scripting_gate_json_use_pool(r->pool);
    ctx->json = json_loadb((char *) data, (size_t) len, 0, &err);
    ngx_http_scripting_gate_json_use_pool(NULL);

    if (ctx->json == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "scripting_json_var: request body is not JSON: %s "
                      "at byte %d", err.text, err.position);
    }

    return ctx->json;
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
