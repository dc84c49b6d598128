
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The Redis backend: a zone's slots, queue order, cool-downs, learnt
 * limits and rate shared by every nginx that names the same Redis.
 *
 * A request first passes the node's own gate in shared memory (the local
 * queue, the node's share of the limit); the holders of local slots, the
 * heads of the local queues, then ask Redis.  There, one Lua script does
 * each step atomically: a slot is a member of a sorted set whose score is
 * its lease's end (renewed while the request runs, so that a node that
 * dies loses its slots within the lease), a waiter a member of the key's
 * queue, ordered by a global ticket, with an expiry of its own that its
 * polls renew.  A release publishes the key on the zone's channel: the
 * waiters of every node ask again at once; a slow poll covers lost
 * messages.  Each worker keeps one connection for commands (pipelined:
 * one round trip per acquire and per release) and one for wake-ups.
 *
 * Redis unreachable or late: the node gates with its shared memory alone
 * (fallback=local) or refuses (fallback=closed); what a node held at Redis
 * then expires with its lease.
 */


#include <ngx_sha1.h>

#include "ngx_http_scripting_gate_shm.h"
#include "ngx_http_scripting_gate_util.h"
#include "ngx_http_scripting_gate_redis.h"
#include "ngx_http_scripting_gate_hiredis.h"


#define NGX_HTTP_SCRIPTING_GATE_REDIS_LOCAL    0
#define NGX_HTTP_SCRIPTING_GATE_REDIS_CLOSED   1

/* a record's place at Redis */
#define NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE     0
#define NGX_HTTP_SCRIPTING_GATE_REMOTE_WAITING  1
#define NGX_HTTP_SCRIPTING_GATE_REMOTE_HOLDING  2

/* the script's answers */
#define NGX_HTTP_SCRIPTING_GATE_REMOTE_QUEUED   0
#define NGX_HTTP_SCRIPTING_GATE_REMOTE_GRANTED  1
#define NGX_HTTP_SCRIPTING_GATE_REMOTE_REFUSED  2

/* a waiter's poll, should a wake-up be lost (bench/run.sh builds one short) */
#ifndef NGX_HTTP_SCRIPTING_GATE_REDIS_POLL
#define NGX_HTTP_SCRIPTING_GATE_REDIS_POLL      250     /* ms */
#endif
#define NGX_HTTP_SCRIPTING_GATE_SHA1            20      /* a digest's bytes */

/*
 * Commands wait in the pipeline while the worker's connection is being
 * made, but not once a worker of the node has found Redis gone and none
 * has reached it since: a connection made then may never answer.
 */
#define ngx_http_scripting_gate_redis_usable(rd)                             \
    ((rd)->ac                                                                \
     && ngx_http_scripting_gate_redis_sh(rd)->redis_state                    \
        != NGX_HTTP_SCRIPTING_GATE_REDIS_DOWN)

#define ngx_http_scripting_gate_redis_sh(rd)                                 \
    (((ngx_http_scripting_gate_zone_t *) (rd)->shm_zone->data)->sh)

#define NGX_HTTP_SCRIPTING_GATE_REDIS_WAITER    2000    /* ms, at most */
#define NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF   100     /* ms, first */
#define NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF_MAX  2000


/* scripting_gate_redis: a zone's Redis, and a worker's dealings with it */
struct ngx_http_scripting_gate_redis_s {
    ngx_str_t                           url;        /* for the log */
    ngx_str_t                           name;       /* the zone's */
    ngx_shm_zone_t                     *shm_zone;
    u_char                             *host;       /* an address */
    int                                 port;
    ngx_str_t                           user;
    ngx_str_t                           password;
    ngx_int_t                           db;         /* -1: as connected */
    ngx_msec_t                          lease;
    ngx_msec_t                          timeout;
    ngx_uint_t                          fallback;
    ngx_str_t                           channel;
    ngx_log_t                          *log;

    /* the worker's */
    redisAsyncContext                  *ac;         /* commands */
    redisAsyncContext                  *sub;        /* wake-ups */
    ngx_uint_t                          pending;    /* replies to come */
    ngx_msec_t                          since;      /* of the oldest */
    ngx_msec_t                          backoff;
    ngx_msec_t                          renewed;
    ngx_event_t                         reconnect;
    ngx_event_t                         watchdog;
    ngx_queue_t                         busy;       /* records: asking, */
    ngx_queue_t                         waiting;    /* in the queue, */
    ngx_queue_t                         holding;    /* with a slot, */
    ngx_queue_t                         free;       /* or unused, */
    ngx_queue_t                         orphans;    /* or to undo */
    ngx_uint_t                          serial;     /* of members */
    u_char                             *out;        /* a command */
    size_t                              out_size;
    u_char                              number[NGX_INT_T_LEN];
    ngx_msec_t                          sub_since;
    unsigned                            connected:1;
    unsigned                            subscribed:1;
    unsigned                            sub_refused:1;  /* and logged */
    unsigned                            pinged:1;   /* the state checked */
};


/*
 * A hold's place at Redis.  It outlives the hold when the request goes
 * while a reply is due: the reply is then undone (a slot given back), and
 * the record reused.
 */
struct ngx_http_scripting_gate_remote_s {
    ngx_queue_t                         queue;      /* one of redis's */
    ngx_http_scripting_gate_redis_t    *redis;
    ngx_http_scripting_gate_hold_t     *hold;       /* NULL once released */
    ngx_http_scripting_gate_hold_pt     handler;    /* the caller's */
    ngx_event_t                         event;      /* the next look */
    ngx_msec_t                          arrived;    /* at the node's gate */
    ngx_msec_t                          arrived_at; /* the same, Unix ms */
    ngx_msec_t                          deadline;
    ngx_msec_t                          since;      /* asked first */
    ngx_msec_t                          orphaned;   /* Redis's state of it
                                                       unknown since */
    struct timespec                     sent;
    ngx_uint_t                          limit;
    ngx_uint_t                          min;
    ngx_msec_t                          interval;
    ngx_uint_t                          outcome;
    u_char                             *buf;        /* names, member, key */
    size_t                              size;
    size_t                              name_len;   /* each of four */
    size_t                              member_len;
    size_t                              key_len;
    unsigned                            state:2;
    unsigned                            asking:1;   /* a reply is due */
    unsigned                            leaving:1;
    unsigned                            counted:1;  /* in node->remote */
    unsigned                            adaptive:1;
    unsigned                            retry:1;
    unsigned                            may_wait:1;
    unsigned                            queued:1;   /* first at Redis */
};


static ngx_msec_t ngx_http_scripting_gate_redis_time(ngx_str_t *value,
    size_t skip, ngx_msec_t min);
static char *ngx_http_scripting_gate_redis_url(ngx_conf_t *cf,
    ngx_http_scripting_gate_redis_t *rd, ngx_str_t *value);
static ngx_int_t ngx_http_scripting_gate_redis_acquire(
    ngx_http_scripting_gate_hold_t *h);
static void ngx_http_scripting_gate_redis_local(
    ngx_http_scripting_gate_hold_t *h, ngx_int_t rc);
static ngx_int_t ngx_http_scripting_gate_redis_fallback(
    ngx_http_scripting_gate_hold_t *h);
static void ngx_http_scripting_gate_redis_release(
    ngx_http_scripting_gate_hold_t *h);
static void ngx_http_scripting_gate_redis_cooldown(
    ngx_http_scripting_gate_hold_t *h, ngx_msec_t delay);
static ngx_int_t ngx_http_scripting_gate_redis_snapshot(
    ngx_http_scripting_gate_zone_t *zone, ngx_pool_t *pool,
    ngx_uint_t max_keys, ngx_http_scripting_gate_zone_stats_t *z);

static void ngx_http_scripting_gate_redis_count(
    ngx_http_scripting_gate_hold_t *h, size_t field);
static void ngx_http_scripting_gate_redis_waited(
    ngx_http_scripting_gate_hold_t *h, ngx_msec_t ms);
static ngx_http_scripting_gate_remote_t *ngx_http_scripting_gate_remote_get(
    ngx_http_scripting_gate_redis_t *rd, ngx_http_scripting_gate_hold_t *h);
static void ngx_http_scripting_gate_remote_put(
    ngx_http_scripting_gate_remote_t *rr);
static void ngx_http_scripting_gate_remote_undo(
    ngx_http_scripting_gate_remote_t *rr);
static void ngx_http_scripting_gate_remote_move(
    ngx_http_scripting_gate_remote_t *rr, ngx_queue_t *list,
    ngx_uint_t state);
static void ngx_http_scripting_gate_remote_unschedule(
    ngx_http_scripting_gate_remote_t *rr);
static ngx_int_t ngx_http_scripting_gate_remote_ask(
    ngx_http_scripting_gate_remote_t *rr);
static void ngx_http_scripting_gate_remote_leave(
    ngx_http_scripting_gate_remote_t *rr);
static void ngx_http_scripting_gate_remote_count(
    ngx_http_scripting_gate_remote_t *rr, ngx_int_t n);
static void ngx_http_scripting_gate_remote_done(
    ngx_http_scripting_gate_remote_t *rr, ngx_int_t rc);
static void ngx_http_scripting_gate_remote_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_remote_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_scripting_gate_remote_answer(
    ngx_http_scripting_gate_remote_t *rr, redisReply *reply);
static ngx_int_t ngx_http_scripting_gate_redis_send(
    ngx_http_scripting_gate_redis_t *rd, ngx_http_scripting_gate_remote_t *rr,
    char op, ngx_uint_t *args, ngx_uint_t nargs);

static void ngx_http_scripting_gate_redis_connect(ngx_event_t *ev);
static void ngx_http_scripting_gate_redis_hurry(
    ngx_http_scripting_gate_redis_t *rd);
static redisAsyncContext *ngx_http_scripting_gate_redis_open(
    ngx_http_scripting_gate_redis_t *rd);
static void ngx_http_scripting_gate_redis_connected(
    const redisAsyncContext *ac, int status);
static void ngx_http_scripting_gate_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_scripting_gate_redis_checked(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_scripting_gate_redis_message(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_uint_t ngx_http_scripting_gate_redis_named(redisReply *msg,
    ngx_http_scripting_gate_remote_t *rr);
static void ngx_http_scripting_gate_redis_error(
    ngx_http_scripting_gate_redis_t *rd, redisReply *reply);
static void ngx_http_scripting_gate_redis_lost(
    ngx_http_scripting_gate_redis_t *rd, const redisAsyncContext *ac,
    const char *why);
static void ngx_http_scripting_gate_redis_drop(
    ngx_http_scripting_gate_redis_t *rd, const char *why);
static void ngx_http_scripting_gate_redis_state(
    ngx_http_scripting_gate_redis_t *rd, ngx_uint_t state, const char *why);
static void ngx_http_scripting_gate_redis_watchdog(ngx_event_t *ev);


/*
 * The shared memory's operations, but for those that ask Redis too; made
 * at postconfiguration.  The retry budget and the figures are the node's.
 */
ngx_http_scripting_gate_backend_t  ngx_http_scripting_gate_redis_backend;


/*
 * KEYS: the key's slots (member: lease end), queue (member: ticket), the
 * queue's expiries, and its hash (e: effective limit, l: learning, p:
 * next probe, g: probe gap, b: probing, c: cool-down end, n: next start,
 * s: tickets).  ARGV[1] the step, ARGV[2] the member.  Time is Redis's, so
 * that the nodes' clocks do not matter.  When slots are free and waiters
 * wait (a release, a lease or a waiter expired), the members that can go
 * now are published: only their owners ask again.  A waiter's place is
 * its arrival at its node, as the node's clock says, kept within 500 ms
 * before Redis's time less what it waited there (a node whose clock is
 * off gains or loses that much at most), so that a request held in its
 * node's queue, or in the commands Redis has yet to run, is not overtaken
 * by later ones; retries go ahead of newcomers (2^50 less).  The
 * learning follows the shared memory's (queue.c), with the cluster's
 * figures.  Needs Redis 5 or later (TIME before writes: scripts
 * replicated by their effects).
 */
static ngx_str_t  ngx_http_scripting_gate_redis_script = ngx_string(
"local s, q, w, h = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
"local op, m = ARGV[1], ARGV[2]\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local ttl = 600000\n"
"local function wake(channel, limit, min, adaptive)\n"
"  if redis.call('ZCARD', q) == 0 then return end\n"
"  local lim = limit\n"
"  if adaptive == '1' then\n"
"    lim = math.max(math.min(tonumber(redis.call('HGET', h, 'e')) or min,"
" limit), min)\n"
"  end\n"
"  local free = lim - redis.call('ZCARD', s)\n"
"  if free > 0 then\n"
"    redis.pcall('PUBLISH', channel,\n"
"               table.concat(redis.call('ZRANGE', q, 0, free - 1), ' '))\n"
"  end\n"
"end\n"
"if op == 'n' then\n"
"  redis.call('ZADD', s, 'XX', now + tonumber(ARGV[3]), m)\n"
"  redis.call('PEXPIRE', s, math.max(ttl, 2 * tonumber(ARGV[3])))\n"
"  return 0\n"
"end\n"
"if op == 'c' then\n"
"  local u = now + tonumber(ARGV[3])\n"
"  if (tonumber(redis.call('HGET', h, 'c')) or 0) < u then\n"
"    redis.call('HSET', h, 'c', u)\n"
"    redis.call('PEXPIRE', h, math.max(ttl, 2 * tonumber(ARGV[3])))\n"
"  end\n"
"  return 0\n"
"end\n"
"local gone = redis.call('ZREMRANGEBYSCORE', s, '-inf', now)\n"
"local left = redis.call('ZRANGEBYSCORE', w, '-inf', now)\n"
"for i = 1, #left do redis.call('ZREM', q, left[i]) end\n"
"redis.call('ZREMRANGEBYSCORE', w, '-inf', now)\n"
"gone = gone + #left\n"
"if op == 'r' then\n"
"  local o, limit, min = tonumber(ARGV[3]), tonumber(ARGV[4]),"
" tonumber(ARGV[5])\n"
"  if ARGV[6] == '1' and o > 0 and redis.call('ZSCORE', s, m) then\n"
"    local f = redis.call('HMGET', h, 'e', 'l', 'p', 'g', 'b')\n"
"    local e = tonumber(f[1]) or min\n"
"    local g = tonumber(f[4]) or 1000\n"
"    local active = redis.call('ZCARD', s)\n"
"    if o == 429 or o == 503 then\n"
"      local n = math.max(active - 1, min)\n"
"      if n < e then\n"
"        e = n\n"
"        redis.call('HINCRBY', h, 'd', 1)\n"
"      end\n"
"      if f[5] == '1' then g = math.min(g * 2, 1500) else g = 1000 end\n"
"      redis.call('HSET', h, 'e', e, 'l', 0, 'p', now + g, 'g', g, 'b', 0)\n"
"    elseif o < 500 and e < limit\n"
"           and not (active < e and redis.call('ZCARD', q) == 0) then\n"
"      local up = true\n"
"      if f[2] == '0' then\n"
"        if now < (tonumber(f[3]) or 0) then\n"
"          up = false\n"
"        else\n"
"          if f[5] == '1' then g = math.max(math.floor(g / 2), 50) end\n"
"          redis.call('HSET', h, 'b', 1, 'p', now + g, 'g', g)\n"
"        end\n"
"      end\n"
"      if up then\n"
"        redis.call('HSET', h, 'e', e + 1)\n"
"        redis.call('HINCRBY', h, 'i', 1)\n"
"      end\n"
"    end\n"
"  end\n"
"  redis.call('ZREM', s, m)\n"
"  redis.call('ZREM', q, m)\n"
"  redis.call('ZREM', w, m)\n"
"  wake(ARGV[7], limit, min, ARGV[6])\n"
"  return {3, redis.call('ZCARD', s), redis.call('ZCARD', q), 0, 0, 0}\n"
"end\n"
"local limit, min = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
"if gone > 0 then wake(ARGV[13], limit, min, ARGV[5]) end\n"
"local f = redis.call('HMGET', h, 'e', 'c', 'n')\n"
"local eff = limit\n"
"if ARGV[5] == '1' then\n"
"  eff = tonumber(f[1])\n"
"  if not eff then\n"
"    eff = min\n"
"    redis.call('HSET', h, 'e', min, 'l', 1, 'p', now, 'g', 1000, 'b', 0)\n"
"  end\n"
"  eff = math.max(math.min(eff, limit), min)\n"
"end\n"
"local cool = tonumber(f[2]) or 0\n"
"local nxt = tonumber(f[3]) or 0\n"
"local iv = tonumber(ARGV[6])\n"
"local active = redis.call('ZCARD', s)\n"
"local rank = redis.call('ZRANK', q, m)\n"
"local fresh = not rank\n"
"local score\n"
"if fresh then\n"
"  local est = now - tonumber(ARGV[11])\n"
"  local at = math.max(math.min(tonumber(ARGV[12]), est), est - 500)\n"
"  score = at * 1024\n"
"          + redis.call('HINCRBY', h, 's', 1) % 1024\n"
"  if ARGV[9] == '1' then score = score - 1125899906842624 end\n"
"  score = string.format('%.0f', score)\n"
"  rank = redis.call('ZCOUNT', q, '-inf', '(' .. score)\n"
"end\n"
"local hint = 0\n"
"if cool > now then hint = cool - now\n"
"elseif iv > 0 and nxt > now and rank == 0 then hint = nxt - now end\n"
"if hint == 0 and rank < eff - active and (iv == 0 or rank == 0) then\n"
"  redis.call('ZADD', s, now + tonumber(ARGV[7]), m)\n"
"  if not fresh then\n"
"    redis.call('ZREM', q, m)\n"
"    redis.call('ZREM', w, m)\n"
"  end\n"
"  if iv > 0 then redis.call('HSET', h, 'n', math.max(nxt, now) + iv) end\n"
"  redis.call('PEXPIRE', s, math.max(ttl, 2 * tonumber(ARGV[7])))\n"
"  if redis.call('PTTL', h) < ttl then redis.call('PEXPIRE', h, ttl) end\n"
"  return {1, active + 1, redis.call('ZCARD', q), eff, 0, 0}\n"
"end\n"
"if ARGV[10] == '0' or hint > tonumber(ARGV[10]) then\n"
"  if not fresh then\n"
"    redis.call('ZREM', q, m)\n"
"    redis.call('ZREM', w, m)\n"
"  end\n"
"  return {2, active, redis.call('ZCARD', q), eff, hint,"
" cool > now and 1 or 0}\n"
"end\n"
"if fresh then redis.call('ZADD', q, score, m) end\n"
"redis.call('ZADD', w, now + tonumber(ARGV[8]), m)\n"
"redis.call('PEXPIRE', q, ttl)\n"
"redis.call('PEXPIRE', w, ttl)\n"
"if redis.call('PTTL', h) < ttl then redis.call('PEXPIRE', h, ttl) end\n"
"return {0, active, redis.call('ZCARD', q), eff, hint, 0}\n");

static u_char  ngx_http_scripting_gate_redis_sha[
                   NGX_HTTP_SCRIPTING_GATE_SHA1 * 2];


/* scripting_gate_redis zone=NAME redis://... [lease=] [timeout=] ... */

char *
ngx_http_scripting_gate_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  *redis = (ngx_array_t *) ((char *) conf + cmd->offset);

    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_scripting_gate_redis_t   *rd, **rdp;

    value = cf->args->elts;

    rdp = ngx_array_push(redis);
    if (rdp == NULL) {
        return NGX_CONF_ERROR;
    }

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_redis_t));
    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    *rdp = rd;

    rd->db = -1;
    rd->lease = 10000;
    rd->timeout = 200;
    rd->fallback = NGX_HTTP_SCRIPTING_GATE_REDIS_LOCAL;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            rd->name.data = value[i].data + 5;
            rd->name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "redis://", 8) == 0) {
            if (ngx_http_scripting_gate_redis_url(cf, rd, &value[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "lease=", 6) == 0) {
            rd->lease = ngx_http_scripting_gate_redis_time(&value[i], 6,
                                                           1000);
            if (rd->lease == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            rd->timeout = ngx_http_scripting_gate_redis_time(&value[i], 8,
                                                             10);
            if (rd->timeout == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "fallback=local") == 0) {
            rd->fallback = NGX_HTTP_SCRIPTING_GATE_REDIS_LOCAL;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fallback=closed") == 0) {
            rd->fallback = NGX_HTTP_SCRIPTING_GATE_REDIS_CLOSED;
            continue;
        }

        goto invalid;
    }

    if (rd->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rd->host == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have a redis:// URL", &cmd->name);
        return NGX_CONF_ERROR;
    }

    rdp = redis->elts;

    for (i = 0; i + 1 < redis->nelts; i++) {
        if (rdp[i]->name.len == rd->name.len
            && ngx_strncmp(rdp[i]->name.data, rd->name.data, rd->name.len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" has a Redis already",
                               &rd->name);
            return NGX_CONF_ERROR;
        }
    }

    /* a reference, as limit_conn's: the zone may be declared further on */
    rd->shm_zone = ngx_shared_memory_add(cf, &rd->name, 0,
                                         &ngx_http_scripting_gate_module);
    if (rd->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    rd->channel.len = sizeof("sg:{}:wake") - 1 + rd->name.len;
    rd->channel.data = ngx_pnalloc(cf->pool, rd->channel.len);
    if (rd->channel.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(rd->channel.data, "sg:{%V}:wake", &rd->name);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* the time of a "name=time" parameter, at least min ms */

static ngx_msec_t
ngx_http_scripting_gate_redis_time(ngx_str_t *value, size_t skip,
    ngx_msec_t min)
{
    ngx_str_t   s;
    ngx_msec_t  ms;

    s.data = value->data + skip;
    s.len = value->len - skip;

    ms = ngx_parse_time(&s, 0);

    return (ms == (ngx_msec_t) NGX_ERROR || ms < min) ? (ngx_msec_t) NGX_ERROR
                                                      : ms;
}


/*
 * redis://[[user]:password@]host[:port][/db].  The host is resolved here,
 * as proxy_pass resolves its servers: hiredis would resolve it blocking.
 */

static char *
ngx_http_scripting_gate_redis_url(ngx_conf_t *cf,
    ngx_http_scripting_gate_redis_t *rd, ngx_str_t *value)
{
    u_char     *p, *last, *at, *colon;
    size_t      len;
    ngx_url_t   u;

    p = value->data + 8;
    last = value->data + value->len;

    /* the last "@": a password may hold "/" or "@" */
    at = NULL;

    for (colon = p; colon < last; colon++) {
        if (*colon == '@') {
            at = colon;
        }
    }

    /* the URL as logged: without its password */
    rd->url.len = 8 + (at ? last - at - 1 : last - p);
    rd->url.data = ngx_pnalloc(cf->pool, rd->url.len);
    if (rd->url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(rd->url.data, "redis://", 8), at ? at + 1 : p,
               rd->url.len - 8);

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL) {
            goto invalid;
        }

        rd->user.data = p;
        rd->user.len = colon - p;
        rd->password.data = colon + 1;
        rd->password.len = at - colon - 1;

        p = at + 1;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = p;
    u.url.len = last - p;
    u.default_port = 6379;
    u.uri_part = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0
        || u.family == AF_UNIX)
    {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis URL \"%V\": %s", value, u.err);
            return NGX_CONF_ERROR;
        }

        goto invalid;
    }

    if (u.uri.len > 1) {
        rd->db = ngx_atoi(u.uri.data + 1, u.uri.len - 1);

        if (rd->db == NGX_ERROR || rd->db > 65535) {
            goto invalid;
        }
    }

    rd->port = u.port;

    rd->host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (rd->host == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, rd->host,
                        NGX_SOCKADDR_STRLEN, 0);
    rd->host[len] = '\0';

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid redis URL \"%V\"", value);
    return NGX_CONF_ERROR;
}


/* postconfiguration: each Redis's zone, and the script's digest */

ngx_int_t
ngx_http_scripting_gate_redis_init(ngx_conf_t *cf, ngx_array_t *redis)
{
    u_char                             digest[NGX_HTTP_SCRIPTING_GATE_SHA1];
    ngx_uint_t                         i;
    ngx_sha1_t                         sha1;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_redis_t  **rd;

    rd = redis->elts;

    for (i = 0; i < redis->nelts; i++) {
        zone = rd[i]->shm_zone->data;

        if (zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "scripting_gate_redis: unknown zone \"%V\"",
                          &rd[i]->name);
            return NGX_ERROR;
        }

        zone->redis = rd[i];
        zone->backend = &ngx_http_scripting_gate_redis_backend;
    }

    ngx_http_scripting_gate_redis_backend = ngx_http_scripting_gate_shm_backend;
    ngx_http_scripting_gate_redis_backend.acquire =
                                      ngx_http_scripting_gate_redis_acquire;
    ngx_http_scripting_gate_redis_backend.release =
                                      ngx_http_scripting_gate_redis_release;
    ngx_http_scripting_gate_redis_backend.cooldown =
                                      ngx_http_scripting_gate_redis_cooldown;
    ngx_http_scripting_gate_redis_backend.snapshot =
                                      ngx_http_scripting_gate_redis_snapshot;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, ngx_http_scripting_gate_redis_script.data,
                    ngx_http_scripting_gate_redis_script.len);
    ngx_sha1_final(digest, &sha1);

    ngx_hex_dump(ngx_http_scripting_gate_redis_sha, digest, sizeof(digest));

    return NGX_OK;
}


ngx_int_t
ngx_http_scripting_gate_redis_init_process(ngx_cycle_t *cycle,
    ngx_array_t *redis)
{
    ngx_uint_t                        i;
    ngx_http_scripting_gate_redis_t  **rd;

    /* the cache manager and loader gate nothing */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    rd = redis->elts;

    for (i = 0; i < redis->nelts; i++) {
        rd[i]->log = cycle->log;

        ngx_queue_init(&rd[i]->busy);
        ngx_queue_init(&rd[i]->orphans);
        ngx_queue_init(&rd[i]->waiting);
        ngx_queue_init(&rd[i]->holding);
        ngx_queue_init(&rd[i]->free);

        rd[i]->backoff = NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF;

        rd[i]->reconnect.handler = ngx_http_scripting_gate_redis_connect;
        rd[i]->reconnect.data = rd[i];
        rd[i]->reconnect.log = cycle->log;
        rd[i]->reconnect.cancelable = 1;

        rd[i]->watchdog.handler = ngx_http_scripting_gate_redis_watchdog;
        rd[i]->watchdog.data = rd[i];
        rd[i]->watchdog.log = cycle->log;
        rd[i]->watchdog.cancelable = 1;

        ngx_http_scripting_gate_redis_connect(&rd[i]->reconnect);

        ngx_add_timer(&rd[i]->watchdog, ngx_max(rd[i]->timeout / 2, 10));
    }

    return NGX_OK;
}


/*
 * The worker goes: its holds forget their records, the contexts are freed
 * (their callbacks get no reply and give the records back), then the
 * records.  What this worker held at Redis expires with its lease.
 */

void
ngx_http_scripting_gate_redis_exit_process(ngx_array_t *redis)
{
    ngx_uint_t                         i, j;
    ngx_queue_t                       *q, *lists[5];
    redisAsyncContext                 *ac;
    ngx_http_scripting_gate_redis_t  **rd;
    ngx_http_scripting_gate_remote_t  *rr;

    rd = redis->elts;

    for (i = 0; i < redis->nelts; i++) {
        if (rd[i]->log == NULL) {
            /* not started in this process */
            continue;
        }

        if (rd[i]->reconnect.timer_set) {
            ngx_del_timer(&rd[i]->reconnect);
        }

        if (rd[i]->watchdog.timer_set) {
            ngx_del_timer(&rd[i]->watchdog);
        }

        lists[0] = &rd[i]->busy;
        lists[1] = &rd[i]->waiting;
        lists[2] = &rd[i]->holding;
        lists[3] = &rd[i]->free;
        lists[4] = &rd[i]->orphans;

        for (j = 0; j < 3; j++) {
            for (q = ngx_queue_head(lists[j]);
                 q != ngx_queue_sentinel(lists[j]);
                 q = ngx_queue_next(q))
            {
                rr = ngx_queue_data(q, ngx_http_scripting_gate_remote_t,
                                    queue);
                if (rr->hold) {
                    ngx_http_scripting_gate_remote_count(rr, -1);
                    rr->hold->remote = NULL;
                    rr->hold = NULL;
                }
            }
        }

        ac = rd[i]->ac;
        rd[i]->ac = NULL;

        if (ac) {
            redisAsyncFree(ac);
        }

        ac = rd[i]->sub;
        rd[i]->sub = NULL;

        if (ac) {
            redisAsyncFree(ac);
        }

        for (j = 0; j < 5; j++) {
            while (!ngx_queue_empty(lists[j])) {
                q = ngx_queue_head(lists[j]);
                ngx_queue_remove(q);

                rr = ngx_queue_data(q, ngx_http_scripting_gate_remote_t,
                                    queue);

                ngx_http_scripting_gate_remote_unschedule(rr);

                ngx_free(rr->buf);
                ngx_free(rr);
            }
        }

        ngx_free(rd[i]->out);
        rd[i]->out = NULL;
        rd[i]->out_size = 0;
    }
}


/*
 * The node's own gate first, with what the cluster does not do for it
 * (learning, pacing: Redis does them), then Redis, by the holders of the
 * node's slots.
 */

static ngx_int_t
ngx_http_scripting_gate_redis_acquire(ngx_http_scripting_gate_hold_t *h)
{
    ngx_int_t                          rc;
    ngx_http_scripting_gate_conf_t    *conf;
    ngx_http_scripting_gate_redis_t   *rd;
    ngx_http_scripting_gate_remote_t  *rr;

    rd = h->zone->redis;

    ngx_http_scripting_gate_redis_hurry(rd);

    if (!ngx_http_scripting_gate_redis_usable(rd)) {
        if (rd->fallback == NGX_HTTP_SCRIPTING_GATE_REDIS_CLOSED) {
            return ngx_http_scripting_gate_redis_fallback(h);
        }

        return ngx_http_scripting_gate_shm_backend.acquire(h);
    }

    rr = ngx_http_scripting_gate_remote_get(rd, h);
    if (rr == NULL) {
        return ngx_http_scripting_gate_shm_backend.acquire(h);
    }

    h->remote = rr;
    h->handler = ngx_http_scripting_gate_redis_local;

    conf = h->conf;
    h->conf = conf->local ? conf->local : conf;

    rc = ngx_http_scripting_gate_shm_backend.acquire(h);

    h->conf = conf;

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_OK && ngx_http_scripting_gate_remote_ask(rr) == NGX_OK) {
        return NGX_AGAIN;
    }

    h->handler = rr->handler;
    h->remote = NULL;
    rr->hold = NULL;
    ngx_http_scripting_gate_remote_put(rr);

    if (rc == NGX_OK) {
        /* Redis was lost on the way */
        return ngx_http_scripting_gate_redis_fallback(h);
    }

    return rc;
}


/* the node's queue let the hold through: on to Redis */

static void
ngx_http_scripting_gate_redis_local(ngx_http_scripting_gate_hold_t *h,
    ngx_int_t rc)
{
    ngx_http_scripting_gate_remote_t  *rr;

    rr = h->remote;

    if (rc == NGX_OK && ngx_http_scripting_gate_remote_ask(rr) == NGX_OK) {
        return;
    }

    h->handler = rr->handler;
    h->remote = NULL;
    rr->hold = NULL;
    ngx_http_scripting_gate_remote_put(rr);

    if (rc == NGX_OK
        && ngx_http_scripting_gate_redis_fallback(h) != NGX_OK)
    {
        rc = NGX_DECLINED;
    }

    h->handler(h, rc);
}


/*
 * Without Redis: the node's slot is enough (fallback=local), or none is
 * (fallback=closed: the gate's status, to be asked again in a second).
 */

static ngx_int_t
ngx_http_scripting_gate_redis_fallback(ngx_http_scripting_gate_hold_t *h)
{
    if (h->zone->redis->fallback == NGX_HTTP_SCRIPTING_GATE_REDIS_LOCAL) {
        return NGX_OK;
    }

    h->status = NGX_HTTP_SCRIPTING_GATE_REJECTED;
    h->retry_after = 1000;

    ngx_http_scripting_gate_redis_count(h,
                        offsetof(ngx_http_scripting_gate_counters_t, rejected));

    return NGX_DECLINED;
}


static void
ngx_http_scripting_gate_redis_release(ngx_http_scripting_gate_hold_t *h)
{
    ngx_http_scripting_gate_remote_t  *rr;

    rr = h->remote;

    if (rr) {
        h->remote = NULL;

        ngx_http_scripting_gate_remote_unschedule(rr);

        /* before the node's slot goes, with the node's key */
        ngx_http_scripting_gate_remote_count(rr, -1);

        if (rr->state == NGX_HTTP_SCRIPTING_GATE_REMOTE_HOLDING
            && h->ticket && h->ticket->node->cluster_active)
        {
            /* the figure as last seen, less what this node gives back */
            h->ticket->node->cluster_active--;
        }

        rr->outcome = h->gate->outcome;
        rr->hold = NULL;

        if (!rr->asking && !rr->leaving) {
            ngx_http_scripting_gate_remote_leave(rr);
            ngx_http_scripting_gate_remote_put(rr);
        }
    }

    ngx_http_scripting_gate_shm_backend.release(h);
}


/* the key closes at Redis too: the other nodes' heads learn of it */

static void
ngx_http_scripting_gate_redis_cooldown(ngx_http_scripting_gate_hold_t *h,
    ngx_msec_t delay)
{
    ngx_uint_t                         args[1];
    ngx_http_scripting_gate_remote_t  *rr;

    ngx_http_scripting_gate_shm_backend.cooldown(h, delay);

    rr = h->remote;

    if (rr == NULL || delay == 0) {
        return;
    }

    args[0] = delay;

    (void) ngx_http_scripting_gate_redis_send(rr->redis, rr, 'c', args, 1);
}


static ngx_int_t
ngx_http_scripting_gate_redis_snapshot(ngx_http_scripting_gate_zone_t *zone,
    ngx_pool_t *pool, ngx_uint_t max_keys,
    ngx_http_scripting_gate_zone_stats_t *z)
{
    ngx_http_scripting_gate_shctx_t  *sh;

    if (ngx_http_scripting_gate_shm_backend.snapshot(zone, pool, max_keys, z)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sh = zone->sh;

    z->redis = 1;
    z->redis_up = (sh->redis_state == NGX_HTTP_SCRIPTING_GATE_REDIS_UP);
    z->redis_rtt = sh->redis_rtt;
    z->redis_changes = sh->redis_changes;
    z->redis_closed = (zone->redis->fallback
                       == NGX_HTTP_SCRIPTING_GATE_REDIS_CLOSED);

    return NGX_OK;
}


/* a figure of the node's key and zone, under the mutex, as queue.c's */

static void
ngx_http_scripting_gate_redis_count(ngx_http_scripting_gate_hold_t *h,
    size_t field)
{
    ngx_http_scripting_gate_zone_t  *zone;

    zone = h->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (h->ticket) {
        (*(ngx_atomic_uint_t *) ((u_char *) &h->ticket->node->counters
                                 + field))++;
    }

    (*(ngx_atomic_uint_t *) ((u_char *) &zone->sh->counters + field))++;

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


static void
ngx_http_scripting_gate_redis_waited(ngx_http_scripting_gate_hold_t *h,
    ngx_msec_t ms)
{
    ngx_http_scripting_gate_zone_t  *zone;

    zone = h->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_scripting_gate_hist_add(&zone->sh->wait, ms);
    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * A record for a hold: reused from the worker's free list, its buffer
 * grown for the key's names "sg:{zone:key}:s", ":q", ":w", ":h", the
 * member "<nonce>:<serial>" and the key.
 */

static ngx_http_scripting_gate_remote_t *
ngx_http_scripting_gate_remote_get(ngx_http_scripting_gate_redis_t *rd,
    ngx_http_scripting_gate_hold_t *h)
{
    u_char                            *p;
    size_t                             size;
    ngx_uint_t                         i;
    ngx_time_t                        *tp;
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_conf_t    *conf;
    ngx_http_scripting_gate_remote_t  *rr;
    static u_char                      parts[] = "sqwh";

    if (!ngx_queue_empty(&rd->free)) {
        q = ngx_queue_head(&rd->free);
        rr = ngx_queue_data(q, ngx_http_scripting_gate_remote_t, queue);

    } else {
        rr = ngx_calloc(sizeof(ngx_http_scripting_gate_remote_t), h->log);
        if (rr == NULL) {
            return NULL;
        }

        rr->redis = rd;
        rr->event.handler = ngx_http_scripting_gate_remote_handler;
        rr->event.data = rr;

        ngx_queue_insert_head(&rd->free, &rr->queue);
    }

    rr->name_len = sizeof("sg:{:}:s") - 1 + rd->name.len + h->key.len;
    rr->key_len = h->key.len;

    size = 4 * rr->name_len + 2 * NGX_INT64_LEN + 1 + h->key.len;

    if (size > rr->size) {
        p = ngx_alloc(size, h->log);
        if (p == NULL) {
            return NULL;
        }

        ngx_free(rr->buf);
        rr->buf = p;
        rr->size = size;
    }

    p = rr->buf;

    for (i = 0; i < 4; i++) {
        p = ngx_sprintf(p, "sg:{%V:%V}:%c", &rd->name, &h->key, parts[i]);
    }

    rr->member_len = ngx_sprintf(p, "%016xL:%ui",
                                 ngx_http_scripting_gate_nonce, ++rd->serial)
                     - p;
    p += rr->member_len;

    ngx_memcpy(p, h->key.data, h->key.len);

    conf = h->conf;

    rr->hold = h;
    rr->handler = h->handler;
    rr->event.log = rd->log;
    tp = ngx_timeofday();

    rr->arrived = ngx_current_msec;
    rr->arrived_at = (ngx_msec_t) tp->sec * 1000 + tp->msec;
    rr->deadline = rr->arrived + conf->queue_timeout;
    rr->since = 0;
    rr->limit = h->limit;
    rr->min = ngx_min(conf->min, h->limit);
    rr->interval = conf->interval;
    rr->adaptive = conf->adaptive;
    rr->retry = h->retry;
    rr->may_wait = (h->queue != 0);
    rr->outcome = 0;
    rr->orphaned = 0;
    rr->counted = 0;
    rr->queued = 0;

    ngx_http_scripting_gate_remote_move(rr, &rd->busy,
                                        NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);

    return rr;
}


/* a record no reply is due for, released: back to the free list */

static void
ngx_http_scripting_gate_remote_put(ngx_http_scripting_gate_remote_t *rr)
{
    ngx_http_scripting_gate_redis_t  *rd;

    if (rr->hold || rr->asking || rr->leaving) {
        return;
    }

    rd = rr->redis;

    ngx_http_scripting_gate_remote_unschedule(rr);

    if (rr->orphaned) {
        ngx_http_scripting_gate_remote_undo(rr);
        return;
    }

    ngx_http_scripting_gate_remote_move(rr, &rd->free,
                                        NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);
}


/*
 * A record whose command Redis may have run without telling (the
 * connection was lost while its reply was due), or whose release could
 * not be sent: a slot or a place may be held at Redis by no one.  It is
 * given back as soon as a connection answers, unless its lease is over.
 */

static void
ngx_http_scripting_gate_remote_undo(ngx_http_scripting_gate_remote_t *rr)
{
    ngx_uint_t                        args[4];
    ngx_http_scripting_gate_redis_t  *rd;

    rd = rr->redis;

    if (ngx_current_msec - rr->orphaned > rd->lease) {
        rr->orphaned = 0;
        ngx_http_scripting_gate_remote_move(rr, &rd->free,
                                        NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);
        return;
    }

    args[0] = 0;
    args[1] = rr->limit;
    args[2] = rr->min;
    args[3] = rr->adaptive;

    if (rd->connected
        && ngx_http_scripting_gate_redis_send(rd, rr, 'r', args, 4) == NGX_OK)
    {
        rr->orphaned = 0;
        rr->leaving = 1;
        ngx_http_scripting_gate_remote_move(rr, &rd->busy,
                                        NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);
        return;
    }

    ngx_http_scripting_gate_remote_move(rr, &rd->orphans,
                                        NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);
}


/* every record is on one of its Redis's lists, as its state says */

static void
ngx_http_scripting_gate_remote_move(ngx_http_scripting_gate_remote_t *rr,
    ngx_queue_t *list, ngx_uint_t state)
{
    ngx_queue_remove(&rr->queue);
    ngx_queue_insert_tail(list, &rr->queue);

    rr->state = state;
}


static void
ngx_http_scripting_gate_remote_unschedule(ngx_http_scripting_gate_remote_t *rr)
{
    if (rr->event.timer_set) {
        ngx_del_timer(&rr->event);
    }

    if (rr->event.posted) {
        ngx_delete_posted_event(&rr->event);
    }
}


/* asks Redis for a slot, or to keep the hold's place in the queue */

static ngx_int_t
ngx_http_scripting_gate_remote_ask(ngx_http_scripting_gate_remote_t *rr)
{
    ngx_msec_t  now;
    ngx_uint_t  args[10];

    now = ngx_current_msec;

    if (rr->since == 0) {
        rr->since = now;
    }

    args[0] = rr->limit;
    args[1] = rr->min;
    args[2] = rr->adaptive;
    args[3] = rr->interval;
    args[4] = rr->redis->lease;
    args[5] = ngx_min(rr->redis->lease, NGX_HTTP_SCRIPTING_GATE_REDIS_WAITER);
    args[6] = rr->retry;
    args[7] = (!rr->may_wait) ? 0
              : ((ngx_msec_int_t) (rr->deadline - now) > 0)
                ? rr->deadline - now : 1;
    args[8] = now - rr->arrived;
    args[9] = rr->arrived_at;

    if (ngx_http_scripting_gate_redis_send(rr->redis, rr, 'a', args, 10)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rr->asking = 1;
    (void) clock_gettime(CLOCK_MONOTONIC, &rr->sent);

    /* not cancelable: a worker that shuts down waits for the reply */
    ngx_add_timer(&rr->event, rr->redis->timeout);

    ngx_http_scripting_gate_remote_count(rr, 1);

    return NGX_OK;
}


/* gives back the slot or the place at Redis, with what the attempt got */

static void
ngx_http_scripting_gate_remote_leave(ngx_http_scripting_gate_remote_t *rr)
{
    ngx_uint_t  args[4];

    if (rr->state == NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE) {
        return;
    }

    args[0] = (rr->state == NGX_HTTP_SCRIPTING_GATE_REMOTE_HOLDING)
              ? rr->outcome : 0;
    args[1] = rr->limit;
    args[2] = rr->min;
    args[3] = rr->adaptive;

    ngx_http_scripting_gate_remote_move(rr, &rr->redis->busy,
                                        NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);

    if (ngx_http_scripting_gate_redis_send(rr->redis, rr, 'r', args, 4)
        == NGX_OK)
    {
        rr->leaving = 1;
        return;
    }

    rr->orphaned = ngx_current_msec;
}


/*
 * A node's slot held while its holder waits at Redis is a place in the
 * queue for the figures (n: 1 or -1); the node's key is pinned by the
 * hold's ticket meanwhile.
 */

static void
ngx_http_scripting_gate_remote_count(ngx_http_scripting_gate_remote_t *rr,
    ngx_int_t n)
{
    ngx_http_scripting_gate_hold_t  *h;

    h = rr->hold;

    if (h == NULL || h->ticket == NULL || rr->counted == (n > 0)) {
        return;
    }

    rr->counted = (n > 0);

    (void) ngx_atomic_fetch_add(&h->ticket->node->remote, n);
    (void) ngx_atomic_fetch_add(&h->zone->sh->remote, n);
}


/* the end of a hold's wait at Redis, rc as the gate API's handlers */

static void
ngx_http_scripting_gate_remote_done(ngx_http_scripting_gate_remote_t *rr,
    ngx_int_t rc)
{
    ngx_http_scripting_gate_hold_t  *h;

    h = rr->hold;

    ngx_http_scripting_gate_remote_unschedule(rr);

    ngx_http_scripting_gate_remote_count(rr, -1);

    h->wait += ngx_current_msec - rr->since;

    if (rr->state == NGX_HTTP_SCRIPTING_GATE_REMOTE_WAITING) {
        /* refused, timed out, or let in by the fallback: off the queue */
        ngx_http_scripting_gate_remote_leave(rr);
    }

    if (rr->queued) {
        ngx_http_scripting_gate_redis_waited(h, ngx_current_msec - rr->since);
    }

    h->handler = rr->handler;

    /* the handler runs the posted requests of a request it resumes */
    h->handler(h, rc);
}


/* a waiter's next look: its poll, a cool-down's end, or its deadline */

static void
ngx_http_scripting_gate_remote_handler(ngx_event_t *ev)
{
    ngx_http_scripting_gate_hold_t    *h;
    ngx_http_scripting_gate_remote_t  *rr;

    rr = ev->data;
    h = rr->hold;

    if (rr->asking) {
        /* the reply is due: the watchdog sees to a late one */
        ngx_add_timer(ev, rr->redis->timeout);
        return;
    }

    if (h == NULL || rr->state != NGX_HTTP_SCRIPTING_GATE_REMOTE_WAITING) {
        return;
    }

    if ((ngx_msec_int_t) (rr->deadline - ngx_current_msec) <= 0) {
        h->status = NGX_HTTP_SCRIPTING_GATE_TIMEOUT;
        h->retry_after = 1000;

        ngx_http_scripting_gate_redis_count(h,
                       offsetof(ngx_http_scripting_gate_counters_t, timed_out));

        ngx_http_scripting_gate_remote_done(rr, NGX_DECLINED);
        return;
    }

    if (ngx_http_scripting_gate_remote_ask(rr) != NGX_OK) {
        ngx_http_scripting_gate_remote_done(rr,
                       (ngx_http_scripting_gate_redis_fallback(h) == NGX_OK)
                       ? NGX_OK : NGX_DECLINED);
    }
}


static void
ngx_http_scripting_gate_remote_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                        *reply = r;
    ngx_http_scripting_gate_redis_t   *rd;
    ngx_http_scripting_gate_remote_t  *rr;

    rd = ac->data;
    rr = privdata;

    if (ac == rd->ac) {
        if (rd->pending) {
            rd->pending--;
        }

        rd->since = ngx_current_msec;
    }

    if (reply == NULL) {
        ngx_http_scripting_gate_redis_lost(rd, ac, "connection lost");

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_scripting_gate_redis_error(rd, reply);

        ngx_http_scripting_gate_redis_drop(rd, "an error");
        reply = NULL;
    }

    if (rr == NULL) {
        return;
    }

    if (rr->leaving) {
        rr->leaving = 0;

        if (reply == NULL) {
            rr->orphaned = ngx_current_msec;
        }

        ngx_http_scripting_gate_remote_put(rr);
        return;
    }

    rr->asking = 0;

    /*
     * the reply's own timer, if any, replaces the one for a late reply
     * (ngx_add_timer() keeps a timer it would move by less than 300 ms)
     */
    if (rr->event.timer_set) {
        ngx_del_timer(&rr->event);
    }

    if (reply == NULL) {
        rr->orphaned = ngx_current_msec;
    }

    ngx_http_scripting_gate_remote_answer(rr, reply);
}


/* the answer to an acquire: a slot, a place in the queue, or a refusal */

static void
ngx_http_scripting_gate_remote_answer(ngx_http_scripting_gate_remote_t *rr,
    redisReply *reply)
{
    int64_t                           v[6];
    ngx_uint_t                        i;
    ngx_msec_t                        timer, now;
    ngx_atomic_uint_t                 us;
    struct timespec                   ts;
    ngx_http_scripting_gate_zone_t   *zone;
    ngx_http_scripting_gate_node_t   *node;
    ngx_http_scripting_gate_hold_t   *h;
    ngx_http_scripting_gate_redis_t  *rd;

    rd = rr->redis;
    h = rr->hold;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 6)
    {
        if (h == NULL) {
            ngx_http_scripting_gate_remote_put(rr);
            return;
        }

        ngx_http_scripting_gate_remote_done(rr,
                       (ngx_http_scripting_gate_redis_fallback(h) == NGX_OK)
                       ? NGX_OK : NGX_DECLINED);
        return;
    }

    for (i = 0; i < 6; i++) {
        v[i] = (reply->element[i]->type == REDIS_REPLY_INTEGER)
               ? reply->element[i]->integer : 0;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    us = (ts.tv_sec - rr->sent.tv_sec) * 1000000
         + (ts.tv_nsec - rr->sent.tv_nsec) / 1000;

    zone = rd->shm_zone->data;
    zone->sh->redis_rtt = zone->sh->redis_rtt
                          ? (zone->sh->redis_rtt * 7 + us) / 8 : us;

    switch (v[0]) {

    case NGX_HTTP_SCRIPTING_GATE_REMOTE_GRANTED:
        ngx_http_scripting_gate_remote_move(rr, &rd->holding,
                                      NGX_HTTP_SCRIPTING_GATE_REMOTE_HOLDING);
        break;

    case NGX_HTTP_SCRIPTING_GATE_REMOTE_QUEUED:
        ngx_http_scripting_gate_remote_move(rr, &rd->waiting,
                                      NGX_HTTP_SCRIPTING_GATE_REMOTE_WAITING);
        break;

    default:
        ngx_http_scripting_gate_remote_move(rr, &rd->busy,
                                      NGX_HTTP_SCRIPTING_GATE_REMOTE_NONE);
    }

    if (h == NULL) {
        /* released meanwhile */
        ngx_http_scripting_gate_remote_leave(rr);
        ngx_http_scripting_gate_remote_put(rr);
        return;
    }

    node = h->ticket->node;
    node->cluster_active = v[1];
    node->cluster_queued = v[2];

    h->effective = v[3];

    switch (v[0]) {

    case NGX_HTTP_SCRIPTING_GATE_REMOTE_GRANTED:
        ngx_http_scripting_gate_remote_done(rr, NGX_OK);
        return;

    case NGX_HTTP_SCRIPTING_GATE_REMOTE_REFUSED:
        h->status = NGX_HTTP_SCRIPTING_GATE_REJECTED;
        h->cooling = (v[5] != 0);
        h->retry_after = (v[4] > 0) ? (ngx_msec_t) v[4] : 1000;

        ngx_http_scripting_gate_redis_count(h,
                        offsetof(ngx_http_scripting_gate_counters_t, rejected));

        ngx_http_scripting_gate_remote_done(rr, NGX_DECLINED);
        return;

    default: /* queued: a wake-up, a poll, a cool-down's end or the end */

        if (h->status == NGX_HTTP_SCRIPTING_GATE_PASSED) {
            /* queued here first: the node's queue did not count it */
            h->status = NGX_HTTP_SCRIPTING_GATE_QUEUED;
            rr->queued = 1;

            ngx_http_scripting_gate_redis_count(h,
                    offsetof(ngx_http_scripting_gate_counters_t, queued_total));
        }

        now = ngx_current_msec;
        timer = NGX_HTTP_SCRIPTING_GATE_REDIS_POLL;

        if (v[4] > 0 && (ngx_msec_t) v[4] < timer) {
            timer = v[4];
        }

        if ((ngx_msec_int_t) (rr->deadline - now) < (ngx_msec_int_t) timer) {
            timer = ((ngx_msec_int_t) (rr->deadline - now) > 0)
                    ? rr->deadline - now : 0;
        }

        ngx_add_timer(&rr->event, timer);
    }
}


/*
 * One EVALSHA of the script, on the worker's connection, pipelined behind
 * what is under way: the key's four names, the step, the member, numbers,
 * and for an acquire or a release the channel to wake waiters on.  The
 * command is written in the protocol here, in the worker's buffer: cheaper
 * than hiredis's formatting, which copies each argument twice.  The
 * replies of acquires and releases go to their record; those of
 * cool-downs and renewals to nobody.
 */

static ngx_int_t
ngx_http_scripting_gate_redis_send(ngx_http_scripting_gate_redis_t *rd,
    ngx_http_scripting_gate_remote_t *rr, char op, ngx_uint_t *args,
    ngx_uint_t nargs)
{
    u_char      *p;
    size_t       size;
    void        *data;
    ngx_uint_t   i, n, wake;

    if (!ngx_http_scripting_gate_redis_usable(rd)) {
        return NGX_ERROR;
    }

    wake = (op == 'a' || op == 'r');
    n = 9 + nargs + wake;

    size = sizeof("*\r\n") - 1 + NGX_INT_T_LEN
           + n * (sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN)
           + sizeof(ngx_http_scripting_gate_redis_sha) + 4 * rr->name_len
           + rr->member_len + nargs * NGX_INT_T_LEN + rd->channel.len + 16;

    if (size > rd->out_size) {
        p = ngx_alloc(size, rd->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_free(rd->out);
        rd->out = p;
        rd->out_size = size;
    }

    p = ngx_sprintf(rd->out, "*%ui\r\n$7\r\nEVALSHA\r\n$%uz\r\n%*s\r\n"
                    "$1\r\n4\r\n",
                    n, sizeof(ngx_http_scripting_gate_redis_sha),
                    sizeof(ngx_http_scripting_gate_redis_sha),
                    ngx_http_scripting_gate_redis_sha);

    for (i = 0; i < 4; i++) {
        p = ngx_sprintf(p, "$%uz\r\n%*s\r\n", rr->name_len, rr->name_len,
                        rr->buf + i * rr->name_len);
    }

    p = ngx_sprintf(p, "$1\r\n%c\r\n$%uz\r\n%*s\r\n", op, rr->member_len,
                    rr->member_len, rr->buf + 4 * rr->name_len);

    for (i = 0; i < nargs; i++) {
        p = ngx_sprintf(p, "$%uz\r\n%ui\r\n",
                        (size_t) (ngx_sprintf(rd->number, "%ui", args[i])
                                  - rd->number),
                        args[i]);
    }

    if (wake) {
        p = ngx_sprintf(p, "$%uz\r\n%V\r\n", rd->channel.len, &rd->channel);
    }

    data = wake ? rr : NULL;

    if (redisAsyncFormattedCommand(rd->ac,
                                   ngx_http_scripting_gate_remote_reply,
                                   data, (char *) rd->out, p - rd->out)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    if (rd->pending++ == 0) {
        rd->since = ngx_current_msec;
    }

    return NGX_OK;
}


/*
 * (Re)connects what is not connected: the commands' connection first
 * (AUTH, SELECT and SCRIPT LOAD go ahead of any command, on the same
 * pipeline), then the one that waits for wake-ups.
 */

static void
ngx_http_scripting_gate_redis_connect(ngx_event_t *ev)
{
    ngx_http_scripting_gate_redis_t  *rd;

    rd = ev->data;

    if (rd->ac == NULL) {
        rd->ac = ngx_http_scripting_gate_redis_open(rd);

        if (rd->ac == NULL) {
            ngx_http_scripting_gate_redis_state(rd,
                                            NGX_HTTP_SCRIPTING_GATE_REDIS_DOWN,
                                            "cannot connect");
            goto again;
        }

        /* AUTH's reply is due */
        rd->pending = rd->password.len ? 1 : 0;

        if (rd->db >= 0
            && redisAsyncCommand(rd->ac, ngx_http_scripting_gate_redis_checked,
                                 NULL, "SELECT %d", (int) rd->db)
               == REDIS_OK)
        {
            rd->pending++;
        }

        if (redisAsyncCommand(rd->ac, ngx_http_scripting_gate_redis_checked,
                              rd, "SCRIPT LOAD %b",
                              ngx_http_scripting_gate_redis_script.data,
                              ngx_http_scripting_gate_redis_script.len)
            == REDIS_OK)
        {
            rd->pending++;
        }

        rd->since = ngx_current_msec;
    }

    if (rd->sub == NULL) {
        rd->sub = ngx_http_scripting_gate_redis_open(rd);

        if (rd->sub == NULL) {
            goto again;
        }

        (void) redisAsyncCommand(rd->sub,
                                 ngx_http_scripting_gate_redis_message, NULL,
                                 "SUBSCRIBE %b", rd->channel.data,
                                 rd->channel.len);

        rd->subscribed = 0;
        rd->sub_since = ngx_current_msec;
    }

    return;

again:

    if (!rd->reconnect.timer_set) {
        ngx_add_timer(&rd->reconnect, rd->backoff);
        rd->backoff = ngx_min(rd->backoff * 2,
                              NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF_MAX);
    }
}


/*
 * Another worker of the node reached Redis again: this one does not wait
 * out its backoff, gating alone meanwhile.
 */

static void
ngx_http_scripting_gate_redis_hurry(ngx_http_scripting_gate_redis_t *rd)
{
    if (rd->ac == NULL && rd->reconnect.timer_set && !ngx_exiting
        && ngx_http_scripting_gate_redis_sh(rd)->redis_state
           == NGX_HTTP_SCRIPTING_GATE_REDIS_UP)
    {
        ngx_del_timer(&rd->reconnect);
        rd->backoff = NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF;

        ngx_http_scripting_gate_redis_connect(&rd->reconnect);
    }
}


/* a connection to the Redis of the zone, in nginx's event loop */

static redisAsyncContext *
ngx_http_scripting_gate_redis_open(ngx_http_scripting_gate_redis_t *rd)
{
    redisAsyncContext  *ac;

    ac = redisAsyncConnect((char *) rd->host, rd->port);

    if (ac == NULL) {
        return NULL;
    }

    if (ac->err) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "scripting_gate_redis: connect to %V: %s",
                       &rd->url, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }

    ac->data = rd;

    if (ngx_http_scripting_gate_hiredis_attach(ac, rd->log) != NGX_OK) {
        redisAsyncFree(ac);
        return NULL;
    }

    (void) redisAsyncSetConnectCallback(ac,
                                    ngx_http_scripting_gate_redis_connected);
    (void) redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_scripting_gate_redis_disconnected);

    if (rd->password.len) {
        if (rd->user.len) {
            (void) redisAsyncCommand(ac, ngx_http_scripting_gate_redis_checked,
                                     NULL, "AUTH %b %b", rd->user.data,
                                     rd->user.len, rd->password.data,
                                     rd->password.len);

        } else {
            (void) redisAsyncCommand(ac, ngx_http_scripting_gate_redis_checked,
                                     NULL, "AUTH %b", rd->password.data,
                                     rd->password.len);
        }

    }

    return ac;
}


static void
ngx_http_scripting_gate_redis_connected(const redisAsyncContext *ac,
    int status)
{
    if (status != REDIS_OK) {
        ngx_http_scripting_gate_redis_lost(ac->data, ac, ac->errstr);
    }
}


static void
ngx_http_scripting_gate_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_scripting_gate_redis_lost(ac->data, ac,
                                       ac->errstr[0] ? ac->errstr
                                                     : "disconnected");
}


/*
 * The replies of the connection's set-up (AUTH, SELECT, SCRIPT LOAD,
 * on either connection): the last one, SCRIPT LOAD's, makes it usable.
 */

static void
ngx_http_scripting_gate_redis_checked(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                        *reply = r;
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_redis_t   *rd;
    ngx_http_scripting_gate_remote_t  *rr;

    rd = ac->data;

    if (ac == rd->ac) {
        if (rd->pending) {
            rd->pending--;
        }

        rd->since = ngx_current_msec;
    }

    if (reply == NULL) {
        ngx_http_scripting_gate_redis_lost(rd, ac, "connection lost");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_scripting_gate_redis_error(rd, reply);

        if (ac == rd->ac) {
            ngx_http_scripting_gate_redis_drop(rd, "refused");

        } else if (ac == rd->sub) {
            ngx_http_scripting_gate_redis_lost(rd, ac, "refused");
            redisAsyncFree(ac);
        }

        return;
    }

    if (privdata == NULL || ac != rd->ac) {
        return;
    }

    /* SCRIPT LOAD's reply, or PING's */
    rd->pinged = 0;
    rd->connected = 1;
    rd->backoff = NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF;

    ngx_http_scripting_gate_redis_state(rd, NGX_HTTP_SCRIPTING_GATE_REDIS_UP,
                                        NULL);

    /* what the last connection left undone, once each */

    for (q = ngx_queue_head(&rd->orphans), n = 0;
         q != ngx_queue_sentinel(&rd->orphans);
         q = ngx_queue_next(q))
    {
        n++;
    }

    while (n-- && rd->connected) {
        q = ngx_queue_head(&rd->orphans);
        rr = ngx_queue_data(q, ngx_http_scripting_gate_remote_t, queue);

        ngx_http_scripting_gate_remote_undo(rr);
    }
}


/*
 * Slots are free at a key: the waiters named, those of this worker among
 * them, ask again, from a posted event (asking may end a wait, whose
 * handler may change the list walked here).
 */

static void
ngx_http_scripting_gate_redis_message(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                        *reply = r, *msg;
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_redis_t   *rd;
    ngx_http_scripting_gate_remote_t  *rr;

    rd = ac->data;

    if (reply == NULL) {
        if (ac == rd->sub && ac->err == REDIS_ERR_OTHER && !rd->sub_refused) {
            /*
             * hiredis closes a subscriber whose SUBSCRIBE Redis refused
             * (an ACL user without the channel, say): gating goes on,
             * woken by the poll
             */
            rd->sub_refused = 1;

            ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                          "scripting_gate_redis: zone \"%V\": redis at %V "
                          "refused to subscribe to \"%V\" (%s), waiters ask "
                          "again every %ui ms", &rd->name, &rd->url,
                          &rd->channel, ac->errstr,
                          (ngx_uint_t) NGX_HTTP_SCRIPTING_GATE_REDIS_POLL);
        }

        ngx_http_scripting_gate_redis_lost(rd, ac, "connection lost");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_scripting_gate_redis_checked(ac, r, privdata);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
            && reply->element[0]->type == REDIS_REPLY_STRING
            && ngx_strcmp(reply->element[0]->str, "subscribe") == 0
            && ac == rd->sub)
        {
            rd->subscribed = 1;
            rd->sub_refused = 0;
        }

        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") != 0) {
        return;
    }

    msg = reply->element[2];

    for (q = ngx_queue_head(&rd->waiting);
         q != ngx_queue_sentinel(&rd->waiting);
         q = ngx_queue_next(q))
    {
        rr = ngx_queue_data(q, ngx_http_scripting_gate_remote_t, queue);

        if (rr->asking || rr->event.posted || rr->hold == NULL
            || !ngx_http_scripting_gate_redis_named(msg, rr))
        {
            continue;
        }

        if (rr->event.timer_set) {
            ngx_del_timer(&rr->event);
        }

        ngx_post_event(&rr->event, &ngx_posted_events);
    }
}


/* whether a wake-up, members separated by spaces, names the record's */

static ngx_uint_t
ngx_http_scripting_gate_redis_named(redisReply *msg,
    ngx_http_scripting_gate_remote_t *rr)
{
    u_char  *p, *last, *member;

    p = (u_char *) msg->str;
    last = p + msg->len;
    member = rr->buf + 4 * rr->name_len;

    while (last - p >= (ssize_t) rr->member_len) {
        if (ngx_memcmp(p, member, rr->member_len) == 0
            && (p + rr->member_len == last || p[rr->member_len] == ' '))
        {
            return 1;
        }

        p = ngx_strlchr(p, last, ' ');

        if (p == NULL) {
            break;
        }

        p++;
    }

    return 0;
}


static void
ngx_http_scripting_gate_redis_error(ngx_http_scripting_gate_redis_t *rd,
    redisReply *reply)
{
    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "scripting_gate_redis: zone \"%V\": redis at %V answered "
                  "\"%*s\"", &rd->name, &rd->url,
                  (size_t) ngx_min(reply->len, 256), reply->str);
}


/* hiredis lost a context and frees it: another one, later */

static void
ngx_http_scripting_gate_redis_lost(ngx_http_scripting_gate_redis_t *rd,
    const redisAsyncContext *ac, const char *why)
{
    if (ac == rd->ac) {
        rd->ac = NULL;
        rd->connected = 0;
        rd->pinged = 0;
        rd->pending = 0;

        ngx_http_scripting_gate_redis_state(rd,
                                            NGX_HTTP_SCRIPTING_GATE_REDIS_DOWN,
                                            why);

    } else if (ac == rd->sub) {
        rd->sub = NULL;

    } else {
        return;
    }

    if (!rd->reconnect.timer_set && !ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&rd->reconnect, rd->backoff);
        rd->backoff = ngx_min(rd->backoff * 2,
                              NGX_HTTP_SCRIPTING_GATE_REDIS_BACKOFF_MAX);
    }
}


/* the module gives up a connection: late replies, or refused commands */

static void
ngx_http_scripting_gate_redis_drop(ngx_http_scripting_gate_redis_t *rd,
    const char *why)
{
    redisAsyncContext  *ac;

    ac = rd->ac;

    if (ac == NULL) {
        return;
    }

    ngx_http_scripting_gate_redis_lost(rd, ac, why);

    /* from a callback, hiredis frees it when the callback returns */
    redisAsyncFree(ac);
}


/*
 * The state the zone's workers last saw, logged by the worker that saw it
 * change: each change once, not once per worker.
 */

static void
ngx_http_scripting_gate_redis_state(ngx_http_scripting_gate_redis_t *rd,
    ngx_uint_t state, const char *why)
{
    ngx_atomic_uint_t                 old;
    ngx_http_scripting_gate_zone_t   *zone;
    ngx_http_scripting_gate_shctx_t  *sh;

    zone = rd->shm_zone->data;
    sh = zone->sh;
    old = sh->redis_state;

    if (old == state || !ngx_atomic_cmp_set(&sh->redis_state, old, state)) {
        return;
    }

    if (old) {
        (void) ngx_atomic_fetch_add(&sh->redis_changes, 1);
    }

    if (state == NGX_HTTP_SCRIPTING_GATE_REDIS_DOWN) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "scripting_gate_redis: zone \"%V\": redis at %V is "
                      "unreachable (%s), %s", &rd->name, &rd->url,
                      why ? why : "unknown",
                      (rd->fallback == NGX_HTTP_SCRIPTING_GATE_REDIS_LOCAL)
                      ? "gating with this node's shared memory"
                      : "refusing gated requests");

    } else if (old) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "scripting_gate_redis: zone \"%V\": redis at %V is "
                      "reachable again, gating shared", &rd->name, &rd->url);
    }
}


/*
 * Every timeout/2: a connection whose replies are late is given up (the
 * requests waiting for them go on under the fallback); every lease/3,
 * the leases of the slots this worker holds are renewed.
 */

static void
ngx_http_scripting_gate_redis_watchdog(ngx_event_t *ev)
{
    ngx_uint_t                         args[1];
    ngx_msec_t                         now;
    ngx_queue_t                       *q;
    redisAsyncContext                 *sub;
    ngx_http_scripting_gate_redis_t   *rd;
    ngx_http_scripting_gate_remote_t  *rr;

    rd = ev->data;
    now = ngx_current_msec;

    ngx_http_scripting_gate_redis_hurry(rd);

    if (rd->ac && rd->pending
        && (ngx_msec_int_t) (now - rd->since) > (ngx_msec_int_t) rd->timeout)
    {
        ngx_http_scripting_gate_redis_drop(rd, "no reply in time");
    }

    if (rd->ac && rd->connected && !rd->pinged
        && ngx_http_scripting_gate_redis_sh(rd)->redis_state
           == NGX_HTTP_SCRIPTING_GATE_REDIS_DOWN
        && redisAsyncCommand(rd->ac, ngx_http_scripting_gate_redis_checked,
                             rd, "PING")
           == REDIS_OK)
    {
        /* another worker found Redis gone: this connection says */
        rd->pinged = 1;

        if (rd->pending++ == 0) {
            rd->since = now;
        }
    }

    if (rd->sub && !rd->subscribed
        && (ngx_msec_int_t) (now - rd->sub_since)
           > (ngx_msec_int_t) rd->timeout)
    {
        /* wake-ups fall back to the poll until another one subscribes */
        sub = rd->sub;
        ngx_http_scripting_gate_redis_lost(rd, sub, "not subscribed in time");
        redisAsyncFree(sub);
    }

    if (rd->ac && rd->connected
        && now - rd->renewed >= rd->lease / 3)
    {
        rd->renewed = now;
        args[0] = rd->lease;

        for (q = ngx_queue_head(&rd->holding);
             q != ngx_queue_sentinel(&rd->holding);
             q = ngx_queue_next(q))
        {
            rr = ngx_queue_data(q, ngx_http_scripting_gate_remote_t, queue);

            (void) ngx_http_scripting_gate_redis_send(rd, rr, 'n', args, 1);
        }
    }

    ngx_add_timer(ev, ngx_max(rd->timeout / 2, 10));
}
