//! The Lua scripts: each store operation's writes, run atomically by Redis.
//!
//! Scripts run with `EVALSHA`, falling back to loading the script once per
//! server ([`Call`] does this, and can send a `WAIT` in the same round
//! trip). They answer with small integer codes
//! ([`WRITTEN`], [`MISSING`], [`TAKEN`], [`CORRUPT`], [`TOO_LARGE`]) and
//! never raise errors of their own.
//!
//! Every write keeps the bytes of the session's values (keys plus JSON
//! text, as [`Data::bytes`](session_core::Data::bytes) counts them) in the
//! hash's `m:size` field, so the size limit is checked inside the script
//! that merges the update, at a cost that grows with the keys it changes,
//! not with the session.
//!
//! On a single node the scripts also keep the user index, whose key they
//! build from the prefix (`prefix .. 'user:{' .. user .. '}'`, as
//! [`user_key`](crate::layout::user_key) does), and the store-wide index of
//! the operator's calls: `prefix .. 'all:exp'`, every session id scored by
//! its expiry (for `count`: one `ZCOUNT`), and `prefix .. 'all:ids'`, the
//! same ids all scored 0 (for `list`: pages by `ZRANGEBYLEX`, in the byte
//! order of the ids' text). Each write that adds an entry also drops up to
//! 100 entries whose sessions Redis has expired. On Cluster the index lives in
//! another slot, so the scripts return the users instead and the store
//! writes the index with its own command.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, RedisResult, Script, ServerErrorKind, ToRedisArgs, Value};

/// One call of a script: its keys and arguments, sent as `EVALSHA`, with
/// the script loaded and the call sent again if the server lacks it
/// (`NOSCRIPT`), as [`redis::ScriptInvocation`] does. Ours because the
/// command must also go into a pipeline, behind which a `WAIT` follows.
pub(crate) struct Call<'a> {
    script: &'a Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(script: &'a Script) -> Self {
        Self {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds a key (`KEYS[i]`).
    pub(crate) fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    /// Adds an argument (`ARGV[i]`).
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    fn evalsha(&self) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }

    /// Runs the script.
    pub(crate) async fn invoke(&self, conn: &mut impl ConnectionLike) -> RedisResult<Value> {
        let cmd = self.evalsha();
        match cmd.query_async(conn).await {
            Err(err) if err.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(conn).await?;
                cmd.query_async(conn).await
            }
            other => other,
        }
    }

    /// Runs the script and, in the same round trip on the same connection,
    /// `WAIT replicas timeout`: the script's reply and how many replicas
    /// acknowledged every write this connection made before the `WAIT`.
    pub(crate) async fn invoke_and_wait(
        &self,
        conn: &mut impl ConnectionLike,
        replicas: usize,
        timeout: Duration,
    ) -> RedisResult<(Value, usize)> {
        let mut pipe = redis::pipe();
        pipe.add_command(self.evalsha())
            .add_command(wait_cmd(replicas, timeout));
        match pipe.query_async(conn).await {
            Err(err) if err.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                // Not run (the `WAIT` then waited for nothing): load, and
                // send both again.
                self.script.load_async(conn).await?;
                pipe.query_async(conn).await
            }
            other => other,
        }
    }
}

/// `WAIT replicas timeout`, the timeout in whole milliseconds (at least 1:
/// 0 would wait for ever).
fn wait_cmd(replicas: usize, timeout: Duration) -> Cmd {
    let millis = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut cmd = redis::cmd("WAIT");
    cmd.arg(replicas).arg(millis);
    cmd
}

/// The write was applied.
pub(crate) const WRITTEN: i64 = 1;
/// The session does not exist or has expired.
pub(crate) const MISSING: i64 = 0;
/// The id is in use already.
pub(crate) const TAKEN: i64 = -1;
/// The key holds something that is not a session hash.
pub(crate) const CORRUPT: i64 = -2;
/// The update would take the values past the size limit; followed by the
/// size they would have reached.
pub(crate) const TOO_LARGE: i64 = -3;
/// The write would give its user more live sessions than allowed, and the
/// policy refuses.
pub(crate) const USER_LIMIT: i64 = -4;

/// Functions every script may use.
const LIB: &str = r#"
local function hset_range(key, args, from)
  local last = #args
  while from <= last do
    local upto = math.min(from + 999, last)
    redis.call('HSET', key, unpack(args, from, upto))
    from = upto + 1
  end
end

local function hdel_range(key, args, from, last)
  while from <= last do
    local upto = math.min(from + 999, last)
    redis.call('HDEL', key, unpack(args, from, upto))
    from = upto + 1
  end
end

local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function user_key(prefix, user)
  return prefix .. 'user:{' .. user .. '}'
end

-- Adds `member` to a user's index with `score` (its expiry), drops the
-- entries whose sessions Redis has expired by now, and lets the index key
-- expire with its last session.
local function index_add(index, member, score, only_raise)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', server_now())
  if only_raise then
    redis.call('ZADD', index, 'GT', score, member)
  else
    redis.call('ZADD', index, score, member)
  end
  local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', index, top[2])
  end
end

-- The store-wide index (single node): ids by expiry, and ids in order.
local function all_keys(prefix)
  return prefix .. 'all:exp', prefix .. 'all:ids'
end

-- Puts `id` in the store-wide index with `score` (its expiry), after
-- dropping up to 100 entries whose sessions Redis has expired by now.
local function all_add(exp_key, ids_key, id, score)
  local stale = redis.call('ZRANGEBYSCORE', exp_key, '-inf', server_now(), 'LIMIT', 0, 100)
  if #stale > 0 then
    redis.call('ZREM', exp_key, unpack(stale))
    redis.call('ZREM', ids_key, unpack(stale))
  end
  redis.call('ZADD', exp_key, score, id)
  redis.call('ZADD', ids_key, 0, id)
end

-- Takes `id` out of the store-wide index.
local function all_remove(prefix, id)
  local exp_key, ids_key = all_keys(prefix)
  redis.call('ZREM', exp_key, id)
  redis.call('ZREM', ids_key, id)
end

-- Keeps `member` in a user's index after a write that did not change the
-- user: raises its score to the new expiry (never lowers it; a stale,
-- higher score only keeps a hint a little longer) and keeps the index key
-- alive as long as its latest entry. Cleaning out passed entries is left to
-- the writes that add entries (index_add).
local function index_touch(index, member, score)
  redis.call('ZADD', index, 'GT', score, member)
  local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', index, top[2])
  end
end

-- A read after the writes, so that a caller with client tracking tracks
-- the key again: a write ends every client's tracking of the key, and the
-- caller's cache now holds what it wrote (see cache.rs). `flag` is `1`
-- for a caller with a cache; one command then.
local function retrack(key, flag)
  if flag == '1' then redis.call('EXISTS', key) end
end

-- WRITTEN, the last activity, the session's user and the bytes of its
-- values (`m:size`, nil for a hash written before it was kept) if the
-- session at `key` is live at `now`; MISSING or CORRUPT otherwise. One
-- HMGET on the common path (a live session); a key of another type fails
-- it (pcall).
local function check_live(key, now)
  local ok, meta = pcall(redis.call, 'HMGET', key, 'm:exp', 'm:last', 'm:created', 'm:user',
    'm:size')
  if not ok then return -2 end
  local exp, last, created = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3])
  if not exp or not last or not created then
    if not meta[1] and not meta[2] and not meta[3]
        and redis.call('EXISTS', key) == 0 then
      return 0
    end
    return -2
  end
  if exp <= tonumber(now) then return 0 end
  return 1, last, meta[4], tonumber(meta[5])
end

-- The per-user limit, checked in the script that writes the session (a
-- single node: the user's sessions are all on it). The live sessions of
-- `user` at `now` other than `a` and `b`, found through the user's index
-- and checked against their hashes (`m:exp`, `m:user`, and `m:last` for
-- the order): nil if there are `max` or more and `refuse` is set, else the
-- ids to end, least recently used first, to leave `max - 1` of them.
local function over_limit(prefix, user, now, max, refuse, a, b)
  local others = {}
  local index = user_key(prefix, user)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf')) do
    if id ~= a and id ~= b then
      local ok, meta = pcall(redis.call, 'HMGET', prefix .. '{' .. id .. '}', 'm:exp',
        'm:user', 'm:last')
      if ok and tonumber(meta[1]) and tonumber(meta[1]) > tonumber(now) and meta[2] == user then
        others[#others + 1] = {tonumber(meta[3]) or 0, id}
      end
    end
  end
  local room = tonumber(max) - 1
  if #others <= room then return {} end
  if refuse == '1' then return nil end
  table.sort(others, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    return x[2] < y[2]
  end)
  local ended = {}
  for i = 1, #others - room do ended[i] = others[i][2] end
  return ended
end

-- Ends the sessions `ids` of `user` (from over_limit); returns how many.
local function end_sessions(prefix, user, ids)
  local index = user_key(prefix, user)
  for _, id in ipairs(ids) do
    redis.call('DEL', prefix .. '{' .. id .. '}')
    redis.call('ZREM', index, id)
    all_remove(prefix, id)
  end
  return #ids
end

-- The bytes of the values of the hash at `key`, measured field by field:
-- for a hash written before `m:size` was kept (once; the write keeps it).
local function measure(key)
  local size = 0
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'd:' then
      size = size + #field - 2 + redis.call('HSTRLEN', key, field)
    end
  end
  return size
end
"#;

/// Checks an update against the size limit, and applies it to a live
/// session's hash; returns the user after it.
///
/// The arguments of [`UPDATE`] and [`RENEW`], in order (1-based in Lua):
/// 1 last activity, 2 expires at, 3 expires at for Redis (clamped),
/// 4 cleared (`1`/`0`), 5 user change (`0` none, `1` to no user, `2` to
/// argument 6), 6 user, 7 expiry change (`1`/`0`), 8 idle, 9 lifetime,
/// 10 persistent (each empty for none), 11 keep the index here (`1`/`0`),
/// 12 prefix, 13 the id, 14 the new id (renew), 15 read the key again at
/// the end (`1`/`0`, see `retrack`), 16 the most bytes the values may
/// hold (empty for no limit), 17 the login time (`-` unchanged, empty for
/// none, else Unix milliseconds), 18 the most live sessions of the user the
/// update gives the session (empty for no limit), 19 refuse (`1`) or end
/// the least recently used (`0`) past it, 20 the number of removed fields,
/// then the removed fields, then field-value pairs to set, `m:exp` (argument 2)
/// last among them, so one `HSET` writes the values, the expiry and (added
/// by `apply_update`) the size.
const APPLY_UPDATE: &str = r#"
-- The bytes of the values of the hash at `key` (holding `before`) once the
-- update is applied; nil and that size if it would grow them past the
-- limit. Only growth is refused: a session over the limit may shrink.
local function size_after(key, before)
  if not before then before = measure(key) end
  local cleared = ARGV[4] == '1'
  local size = before
  if cleared then size = 0 end
  local removed = tonumber(ARGV[20])
  local gone = {}
  for i = 21, 20 + removed do
    local field = ARGV[i]
    if not cleared and not gone[field] then
      local held = redis.call('HSTRLEN', key, field)
      if held > 0 then size = size - (#field - 2) - held end
    end
    gone[field] = true
  end
  -- The pairs to set, but the last (`m:exp`).
  for i = 21 + removed, #ARGV - 3, 2 do
    local field = ARGV[i]
    if not cleared and not gone[field] then
      local held = redis.call('HSTRLEN', key, field)
      if held > 0 then size = size - (#field - 2) - held end
    end
    gone[field] = true
    size = size + (#field - 2) + #ARGV[i + 1]
  end
  local limit = tonumber(ARGV[16])
  if limit and size > limit and size > before then return nil, size end
  return size
end

local function set_or_clear(key, field, value)
  if value == '' then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, value)
  end
end

local function apply_update(key, last, old_user, size)
  if ARGV[4] == '1' then
    local fields = redis.call('HKEYS', key)
    local values = {}
    for _, field in ipairs(fields) do
      if string.sub(field, 1, 2) == 'd:' then values[#values + 1] = field end
    end
    hdel_range(key, values, 1, #values)
  end
  local removed = tonumber(ARGV[20])
  hdel_range(key, ARGV, 21, 20 + removed)
  ARGV[#ARGV + 1] = 'm:size'
  ARGV[#ARGV + 1] = size
  hset_range(key, ARGV, 21 + removed)
  if tonumber(ARGV[1]) > last then
    redis.call('HSET', key, 'm:last', ARGV[1])
  end
  local user = old_user
  if ARGV[5] == '1' then
    redis.call('HDEL', key, 'm:user')
    user = false
  elseif ARGV[5] == '2' then
    redis.call('HSET', key, 'm:user', ARGV[6])
    user = ARGV[6]
  end
  if ARGV[17] ~= '-' then set_or_clear(key, 'm:auth', ARGV[17]) end
  if ARGV[7] == '1' then
    set_or_clear(key, 'm:idle', ARGV[8])
    set_or_clear(key, 'm:life', ARGV[9])
    set_or_clear(key, 'm:pers', ARGV[10])
  end
  redis.call('PEXPIREAT', key, ARGV[3])
  return user
end
"#;

fn script(body: &str, parts: &[&str]) -> Script {
    let mut code = String::new();
    for part in parts {
        code.push_str(part);
    }
    code.push_str(body);
    Script::new(&code)
}

/// Create if absent. KEYS: session[, the store-wide index's two keys
/// (single node)[, the user's index (single node, a session with a user)]].
/// ARGV: expires at for Redis, id, read the key again (`1`/`0`), then
/// field-value pairs. Returns WRITTEN or TAKEN.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
hset_range(KEYS[1], ARGV, 4)
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if KEYS[2] then all_add(KEYS[2], KEYS[3], ARGV[2], ARGV[1]) end
if KEYS[4] then index_add(KEYS[4], ARGV[2], ARGV[1], false) end
retrack(KEYS[1], ARGV[3])
return 1
"#,
        &[LIB],
    )
});

/// Single node: create if absent, within the per-user limit. KEYS:
/// session, index. ARGV: expires at for Redis, id, read the key again
/// (`1`/`0`), prefix, user, now, the most live sessions per user, refuse
/// (`1`) or end the oldest (`0`), then field-value pairs. Returns `{code}`
/// or `{WRITTEN, ended}`.
pub(crate) static CREATE_LIMITED: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1} end
local surplus = over_limit(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[2], '')
if not surplus then return {-4} end
hset_range(KEYS[1], ARGV, 9)
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
index_add(KEYS[2], ARGV[2], ARGV[1], false)
local exp_key, ids_key = all_keys(ARGV[4])
all_add(exp_key, ids_key, ARGV[2], ARGV[1])
retrack(KEYS[1], ARGV[3])
return {1, end_sessions(ARGV[4], ARGV[5], surplus)}
"#,
        &[LIB],
    )
});

/// Update a live session. KEYS: session. ARGV: see [`APPLY_UPDATE`].
/// Returns `{code}` (`{WRITTEN, ended}` when the per-user limit ended
/// sessions), or on Cluster `{WRITTEN, user before, user after}`.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local code, last, old_user, before = check_live(KEYS[1], ARGV[1])
if code ~= 1 then return {code} end
local size, over = size_after(KEYS[1], before)
if not size then return {-3, over} end
local surplus = {}
if ARGV[11] == '1' and ARGV[5] == '2' and ARGV[18] ~= '' then
  surplus = over_limit(ARGV[12], ARGV[6], ARGV[1], ARGV[18], ARGV[19], ARGV[13], '')
  if not surplus then return {-4} end
end
local user = apply_update(KEYS[1], last, old_user, size)
retrack(KEYS[1], ARGV[15])
if ARGV[11] ~= '1' then return {1, old_user, user} end
local exp_key, ids_key = all_keys(ARGV[12])
redis.call('ZADD', exp_key, ARGV[3], ARGV[13])
redis.call('ZADD', ids_key, 0, ARGV[13])
if old_user and old_user ~= user then
  redis.call('ZREM', user_key(ARGV[12], old_user), ARGV[13])
end
if user then
  if user == old_user then
    index_touch(user_key(ARGV[12], user), ARGV[13], ARGV[3])
  else
    index_add(user_key(ARGV[12], user), ARGV[13], ARGV[3], false)
  end
end
if #surplus > 0 then return {1, end_sessions(ARGV[12], ARGV[6], surplus)} end
return {1}
"#,
        &[LIB, APPLY_UPDATE],
    )
});

/// Renew on a single node, in one step. KEYS: old session, new session.
/// ARGV: see [`APPLY_UPDATE`]. Returns `{code}`.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local code, last, old_user, before = check_live(KEYS[1], ARGV[1])
if code ~= 1 then return {code} end
local size, over = size_after(KEYS[1], before)
if not size then return {-3, over} end
local surplus = {}
if ARGV[5] == '2' and ARGV[18] ~= '' then
  surplus = over_limit(ARGV[12], ARGV[6], ARGV[1], ARGV[18], ARGV[19], ARGV[13], ARGV[14])
  if not surplus then return {-4} end
end
redis.call('RENAME', KEYS[1], KEYS[2])
local user = apply_update(KEYS[2], last, old_user, size)
if old_user then redis.call('ZREM', user_key(ARGV[12], old_user), ARGV[13]) end
if user then index_add(user_key(ARGV[12], user), ARGV[14], ARGV[3], false) end
all_remove(ARGV[12], ARGV[13])
local exp_key, ids_key = all_keys(ARGV[12])
all_add(exp_key, ids_key, ARGV[14], ARGV[3])
if #surplus > 0 then return {1, end_sessions(ARGV[12], ARGV[6], surplus)} end
return {1}
"#,
        &[LIB, APPLY_UPDATE],
    )
});

/// Cluster renew, step one: reads and deletes a live session. KEYS:
/// session. ARGV: now. Returns `{code}` or `{WRITTEN, fields}`.
pub(crate) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local code = check_live(KEYS[1], ARGV[1])
if code ~= 1 then return {code} end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return {1, fields}
"#,
        &[LIB],
    )
});

/// Delete a session. KEYS: session. ARGV: keep the index here, prefix, id.
/// Returns `{0}`, `{1}`, or on Cluster `{1, user}`.
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return {0} end
local user = false
if kind == 'hash' then user = redis.call('HGET', KEYS[1], 'm:user') end
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '1' then return {1, user} end
if user then redis.call('ZREM', user_key(ARGV[2], user), ARGV[3]) end
all_remove(ARGV[2], ARGV[3])
return {1}
"#,
        &[LIB],
    )
});

/// Cluster: adds an id to a user's index, only ever raising its score (the
/// index is written apart from the session, so writes may arrive out of
/// order). KEYS: index. ARGV: score, id.
pub(crate) static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
index_add(KEYS[1], ARGV[2], ARGV[1], true)
return 1
"#,
        &[LIB],
    )
});

/// A user's candidate ids (score after `now`), after dropping the entries
/// Redis has expired. On a single node (ARGV 2 = `1`) it keeps only the ids
/// whose session is live at `now` and belongs to the user. KEYS: index.
/// ARGV: now, check here, prefix, user. Returns the ids.
pub(crate) static USER_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', server_now())
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
if ARGV[2] ~= '1' then return ids end
local live = {}
for _, id in ipairs(ids) do
  local key = ARGV[3] .. '{' .. id .. '}'
  if redis.call('TYPE', key).ok == 'hash' then
    local meta = redis.call('HMGET', key, 'm:exp', 'm:user')
    local exp = tonumber(meta[1])
    if exp and exp > tonumber(ARGV[1]) and meta[2] == ARGV[4] then
      live[#live + 1] = id
    end
  end
end
return live
"#,
        &[LIB],
    )
});

/// Single node: deletes every session of a user and the index. KEYS:
/// index. ARGV: prefix, user. Returns how many sessions it deleted.
pub(crate) static DELETE_USER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local ended = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. '{' .. id .. '}'
  local kind = redis.call('TYPE', key).ok
  if kind == 'hash' and redis.call('HGET', key, 'm:user') == ARGV[2] then
    redis.call('DEL', key)
    all_remove(ARGV[1], id)
    ended = ended + 1
  elseif kind == 'none' then
    all_remove(ARGV[1], id)
  end
end
redis.call('DEL', KEYS[1])
return ended
"#,
        &[LIB],
    )
});

/// Single node: one page of the operator's list. KEYS: none (the
/// store-wide index's keys are built from the prefix). ARGV: prefix, now,
/// the id to start after (empty: from the first), the most sessions to
/// return. Walks `all:ids` in order from the cursor, keeps the sessions
/// live at `now`, and drops the entries whose session is gone. Returns
/// `{id, fields, id, fields, ...}` (fields as `HGETALL` gives them).
pub(crate) static LIST: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local _, ids_key = all_keys(ARGV[1])
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
local from = '-'
if ARGV[3] ~= '' then from = '(' .. ARGV[3] end
local out = {}
local found = 0
while found < limit do
  local batch = redis.call('ZRANGEBYLEX', ids_key, from, '+', 'LIMIT', 0, limit - found)
  if #batch == 0 then break end
  for _, id in ipairs(batch) do
    local key = ARGV[1] .. '{' .. id .. '}'
    local kind = redis.call('TYPE', key).ok
    if kind == 'hash' then
      local exp = tonumber(redis.call('HGET', key, 'm:exp'))
      if exp and exp > now then
        out[#out + 1] = id
        out[#out + 1] = redis.call('HGETALL', key)
        found = found + 1
      end
    elseif kind == 'none' then
      all_remove(ARGV[1], id)
    end
    from = '(' .. id
  end
end
return out
"#,
        &[LIB],
    )
});

/// Single node: ends up to a batch of sessions of the store-wide index,
/// in order after a cursor, with their user index entries. ARGV: prefix,
/// the id to start after (empty: from the first), the batch size. Returns
/// `{ended, last id of the batch (empty when there was none)}`.
pub(crate) static DELETE_ALL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local _, ids_key = all_keys(ARGV[1])
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local ids = redis.call('ZRANGEBYLEX', ids_key, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local ended = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. '{' .. id .. '}'
  local kind = redis.call('TYPE', key).ok
  if kind == 'hash' then
    local user = redis.call('HGET', key, 'm:user')
    if user then redis.call('ZREM', user_key(ARGV[1], user), id) end
    redis.call('DEL', key)
    ended = ended + 1
  end
  all_remove(ARGV[1], id)
end
return {ended, ids[#ids] or ''}
"#,
        &[LIB],
    )
});

/// Cluster: deletes a session if it belongs to the user. KEYS: session.
/// ARGV: user. Returns 1 if it deleted it.
pub(crate) static DELETE_IF_OWNED: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], 'm:user') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"#,
        &[],
    )
});
