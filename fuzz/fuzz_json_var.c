
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * A JSON request body read by JSON Pointer: the directive handler
 * ngx_http_scripting_gate_json_var() compiles the pointer, and the
 * variable's getter parses the body once with jansson, in a pool of its
 * own and under the scripting_json_max_memory budget, and walks the
 * pointer over it.
 *
 * Input: one byte of flags, the pointer up to the first "\n", then the
 * body.  Flags: bits 0-2, the size of the body's buffers (0: one buffer,
 * else 1 << n bytes each); bit 3, the second buffer is in a file; bit 4,
 * a body above scripting_json_max_size (64k by default) that is not
 * parsed; bit 5, the body is still being read; bit 6, no body buffers at
 * all; bit 7, a budget of 4k instead of 64m, which a document may run out
 * of.  A second variable with the empty pointer (the whole document) is
 * read too.  The directive must accept exactly the valid pointers, and
 * both variables must hold what the test's own reading of RFC 6901
 * selects in the document jansson makes of the body (or, with the small
 * budget, may be empty).
 */


#define _GNU_SOURCE
#include "fuzz_common.h"
#include <jansson.h>
#include <sys/mman.h>


static ngx_file_t  fuzz_file;
static u_char      fuzz_big[1024 * 1024 + 1];


static ngx_http_variable_t *
fuzz_variable(fuzz_conf_t *fc, char *name)
{
    ngx_uint_t                  i;
    ngx_hash_key_t             *key;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = fc->ctx->main_conf[ngx_http_core_module.ctx_index];
    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        if (key[i].key.len == ngx_strlen(name)
            && ngx_strncmp(key[i].key.data, name, key[i].key.len) == 0)
        {
            return key[i].value;
        }
    }

    return NULL;
}


static ngx_chain_t *
fuzz_body(ngx_pool_t *pool, u_char *body, size_t len, ngx_uint_t flags)
{
    size_t        chunk, n;
    ngx_uint_t    i;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, *head, **ll;

    chunk = (flags & 7) ? (size_t) 1 << (flags & 7) : len;

    head = NULL;
    ll = &head;

    for (i = 0; len || i == 0; i++) {
        n = ngx_min(chunk, len);

        b = ngx_calloc_buf(pool);
        cl = ngx_alloc_chain_link(pool);
        if (b == NULL || cl == NULL) {
            abort();
        }

        if (i == 1 && (flags & 8)) {
            if (ftruncate(fuzz_file.fd, 0) == -1
                || pwrite(fuzz_file.fd, body, n, 7) != (ssize_t) n)
            {
                abort();
            }

            b->in_file = 1;
            b->file = &fuzz_file;
            b->file_pos = 7;
            b->file_last = 7 + n;

        } else {
            b->temporary = 1;
            b->start = b->pos = body;
            b->end = b->last = body + n;
        }

        cl->buf = b;
        cl->next = NULL;
        *ll = cl;
        ll = &cl->next;

        body += n;
        len -= n;
    }

    if (flags & 16) {
        b = ngx_calloc_buf(pool);
        cl = ngx_alloc_chain_link(pool);
        if (b == NULL || cl == NULL) {
            abort();
        }

        b->memory = 1;
        b->pos = fuzz_big;
        b->last = fuzz_big + sizeof(fuzz_big);

        cl->buf = b;
        cl->next = NULL;
        *ll = cl;
    }

    return head;
}


/*
 * The test's own reading of RFC 6901: whether a pointer is valid, and
 * what it selects in a document.
 */

static ngx_int_t
fuzz_pointer_valid(ngx_str_t *ptr)
{
    size_t  i;

    if (ptr->len && ptr->data[0] != '/') {
        return 0;
    }

    for (i = 0; i < ptr->len; i++) {
        if (ptr->data[i] == '~'
            && (i + 1 == ptr->len
                || (ptr->data[i + 1] != '0' && ptr->data[i + 1] != '1')))
        {
            return 0;
        }
    }

    return 1;
}


static json_t *
fuzz_pointer_get(json_t *json, ngx_str_t *ptr)
{
    u_char  *p, *last, tok[4096];
    size_t   n, i, index;

    p = ptr->data;
    last = ptr->data + ptr->len;

    while (json && p < last) {
        p++;                                    /* "/" */
        n = 0;

        while (p < last && *p != '/') {
            if (n == sizeof(tok)) {
                return NULL;
            }

            if (*p == '~') {
                tok[n++] = (p[1] == '0') ? '~' : '/';
                p += 2;

            } else {
                tok[n++] = *p++;
            }
        }

        if (json_is_object(json)) {
            json = json_object_getn(json, (char *) tok, n);
            continue;
        }

        if (!json_is_array(json)) {
            return NULL;
        }

        /* "0", or digits without a leading zero */
        if (n == 0 || n > 18 || (n > 1 && tok[0] == '0')) {
            return NULL;
        }

        index = 0;

        for (i = 0; i < n; i++) {
            if (tok[i] < '0' || tok[i] > '9') {
                return NULL;
            }

            index = index * 10 + (tok[i] - '0');
        }

        json = json_array_get(json, index);
    }

    return json;
}


/* what the variable must hold for the pointer */

static void
fuzz_check_value(u_char *body, size_t len, ngx_str_t *ptr,
    ngx_http_variable_value_t *v, ngx_uint_t may_be_empty)
{
    char          *s;
    json_t        *doc, *json;
    json_error_t   err;

    if (v->not_found && may_be_empty) {
        /* the budget ran out */
        return;
    }

    ngx_http_scripting_gate_json_use_pool(NULL);

    doc = json_loadb((char *) body, len, 0, &err);

    json = doc ? fuzz_pointer_get(doc, ptr) : NULL;

    if (json == NULL || json_is_null(json)) {
        FUZZ_ASSERT(v->not_found);

    } else if (json_is_string(json)) {
        FUZZ_ASSERT(!v->not_found);
        FUZZ_ASSERT(v->len == json_string_length(json));
        FUZZ_ASSERT(ngx_memcmp(v->data, json_string_value(json), v->len)
                    == 0);

    } else {
        FUZZ_ASSERT(!v->not_found);
        s = json_dumps(json, JSON_COMPACT|JSON_ENCODE_ANY);
        FUZZ_ASSERT(s != NULL);
        FUZZ_ASSERT(v->len == strlen(s));
        FUZZ_ASSERT(ngx_memcmp(v->data, s, v->len) == 0);
        free(s);
    }

    if (doc) {
        json_decref(doc);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();

    fuzz_file.fd = memfd_create("fuzz-body", 0);
    if (fuzz_file.fd == -1) {
        abort();
    }

    ngx_str_set(&fuzz_file.name, "fuzz-body");
    fuzz_file.log = &fuzz_log;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *p, *eol, *copy;
    char                       *rv;
    size_t                      blen;
    ngx_int_t                   rc;
    ngx_uint_t                  flags, i, mi;
    ngx_str_t                   words[3], ptr;
    fuzz_conf_t                 fc;
    ngx_http_module_t          *module;
    ngx_http_request_t         *r;
    ngx_http_variable_t        *var[2];
    ngx_http_variable_value_t   vv[2];

    if (size == 0) {
        return 0;
    }

    flags = data[0];

    if (fuzz_conf_init(&fc) != NGX_OK) {
        abort();
    }

    /* the pointer, as nginx gives a word: a copy ending with a zero */

    p = (u_char *) data + 1;
    eol = ngx_strlchr(p, (u_char *) data + size, '\n');
    if (eol == NULL) {
        eol = (u_char *) data + size;
    }

    ngx_str_set(&words[0], "scripting_json_var");
    ngx_str_set(&words[1], "$v");

    words[2].len = eol - p;
    words[2].data = ngx_pnalloc(fc.pool, words[2].len + 1);
    if (words[2].data == NULL) {
        abort();
    }

    ngx_memcpy(words[2].data, p, words[2].len);
    words[2].data[words[2].len] = '\0';

    ptr = words[2];

    rv = fuzz_conf_directive(&fc, NGX_HTTP_MAIN_CONF, fc.ctx->loc_conf, words,
                             3);

    FUZZ_ASSERT((rv == NGX_CONF_OK) == fuzz_pointer_valid(&ptr));

    if (rv != NGX_CONF_OK) {
        fuzz_conf_done(&fc);
        return 0;
    }

    ngx_str_set(&words[1], "$w");
    ngx_str_set(&words[2], "");

    if (fuzz_conf_directive(&fc, NGX_HTTP_MAIN_CONF, fc.ctx->loc_conf, words,
                            3)
        != NGX_CONF_OK)
    {
        abort();
    }

    /* the budget, then the http{} level merged with the defaults */

    ngx_str_set(&words[0], "scripting_json_max_memory");

    if (flags & 128) {
        ngx_str_set(&words[1], "4k");

    } else {
        ngx_str_set(&words[1], "64m");
    }

    if (fuzz_conf_directive(&fc, NGX_HTTP_MAIN_CONF, fc.ctx->loc_conf, words,
                            2)
        != NGX_CONF_OK)
    {
        abort();
    }

    module = ngx_http_scripting_gate_module.ctx;
    mi = ngx_http_scripting_gate_module.ctx_index;

    if (module->merge_loc_conf(fc.cf, module->create_loc_conf(fc.cf),
                               fc.ctx->loc_conf[mi])
        != NGX_CONF_OK)
    {
        abort();
    }

    var[0] = fuzz_variable(&fc, "v");
    var[1] = fuzz_variable(&fc, "w");

    FUZZ_ASSERT(var[0] && var[0]->get_handler);
    FUZZ_ASSERT(var[1] && var[1]->get_handler);

    /* the body, an exact copy so that a read past its end is seen */

    blen = (eol < data + size) ? (u_char *) data + size - (eol + 1) : 0;

    copy = ngx_pnalloc(fc.pool, blen ? blen : 1);
    if (copy == NULL) {
        abort();
    }

    ngx_memcpy(copy, eol + 1 <= data + size ? eol + 1 : eol, blen);

    r = fuzz_request(fc.pool, fc.ctx);
    if (r == NULL) {
        abort();
    }

    r->request_body = ngx_pcalloc(fc.pool, sizeof(ngx_http_request_body_t));
    if (r->request_body == NULL) {
        abort();
    }

    /* bit 6: a body read and gone, as after ngx_http_discard_request_body */
    r->request_body->bufs = (flags & 64) ? NULL
                                         : fuzz_body(fc.pool, copy, blen, flags);
    r->reading_body = (flags & 32) ? 1 : 0;

    for (i = 0; i < 4; i++) {
        /* twice each: the body is parsed once, and read again */
        ngx_memzero(&vv[i % 2], sizeof(ngx_http_variable_value_t));

        rc = var[i % 2]->get_handler(r, &vv[i % 2], var[i % 2]->data);
        FUZZ_ASSERT(rc == NGX_OK);

        if (!vv[i % 2].not_found) {
            FUZZ_ASSERT(vv[i % 2].valid);
            /* jansson keeps no NUL in a string without JSON_ALLOW_NUL */
            FUZZ_ASSERT(vv[i % 2].len == ngx_strlen(vv[i % 2].data));
        }
    }

    if ((flags & (16|32|64)) == 0) {
        fuzz_check_value(copy, blen, &ptr, &vv[0], flags & 128);
        fuzz_check_value(copy, blen, &words[2], &vv[1], flags & 128);

    } else {
        FUZZ_ASSERT(vv[0].not_found && vv[1].not_found);
    }

    fuzz_conf_done(&fc);

    return 0;
}
