// The Lua scripts of `RedisJobWriter`. Each runs atomically inside Redis; together they keep one delivered
// position per destination (a hash field) instead of a key per job.

extension RedisJobWriter {
    /// Shared by both scripts: the server's clock, sending a staged batch, and when the next batch is due.
    ///
    /// `flush` sends the batch staged under `staging` and deletes it. When Redis refuses the batch (its
    /// destination holds another type), the batch goes whole to the dead-letter list `dead` with the reason,
    /// instead of holding every later batch back; it returns the items sent and whether it was dead-lettered.
    static let sharedFunctions = """
        local function now_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function flush(index, staging, reason, now, dead)
          local meta = staging .. ':meta'
          local m = {}
          local fields = redis.call('HGETALL', meta)
          for j = 1, #fields, 2 do m[fields[j]] = fields[j + 1] end
          local items = redis.call('LRANGE', staging, 0, -1)
          if m.destination == nil then
            redis.call('DEL', staging)
            redis.call('ZREM', index, staging)
            return 0, 0
          end
          local body = '{"channel":' .. cjson.encode(m.channel) .. ',"group":' .. m.group .. ',"count":' .. #items ..
            ',"reason":"' .. reason .. '","opened_at_ms":' .. m.opened .. ',"flushed_at_ms":' .. now ..
            ',"items":[' .. table.concat(items, ',') .. ']}'
          local reply
          if m.kind == 'stream' then
            if m.maxlen == '' then
              reply = redis.pcall('XADD', m.destination, '*', 'channel', m.channel, 'count', #items, 'payload', body)
            else
              reply = redis.pcall('XADD', m.destination, 'MAXLEN', '~', m.maxlen, '*', 'channel', m.channel, 'count', #items, 'payload', body)
            end
          else
            reply = redis.pcall('LPUSH', m.destination, body)
          end
          local deadened = 0
          if type(reply) == 'table' and reply.err then
            local letter = '{"reason":' .. cjson.encode('Redis refused a batch of ' .. #items .. ' for ' .. m.destination .. ': ' .. reply.err) ..
              ',"redis_error":' .. cjson.encode(reply.err) .. ',"channel":' .. cjson.encode(m.channel) ..
              ',"destination":' .. cjson.encode(m.destination) .. ',"destination_kind":' .. cjson.encode(m.kind) ..
              ',"dead_at_ms":' .. now .. ',"attempts":1' ..
              ',"hint":' .. cjson.encode('fix the key ' .. m.destination .. ' (redis-cli TYPE ' .. m.destination .. '), then replay: pgevents dead-letters replay') ..
              ',"job":' .. cjson.encode(body) .. '}'
            local stored = redis.pcall('LPUSH', dead, letter)
            if type(stored) == 'table' and stored.err then
              return nil, 'the batch for ' .. m.destination .. ' was refused (' .. reply.err .. ') and so was its dead letter: ' .. stored.err
            end
            deadened = 1
          end
          redis.call('DEL', staging, meta)
          redis.call('ZREM', index, staging)
          return #items, deadened
        end
        local function next_due(index, now)
          local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
          if #first == 0 then return -1 end
          return math.max(0, tonumber(first[2]) - now)
        end

        """

    // KEYS: every key the call touches, declared (the writer's, each destination, each staging list and its meta).
    // ARGV[1]: the delivered-positions hash; ARGV[2]: the batches' index; ARGV[3]: the dead-letter list; ARGV[4]: k,
    // the number of destinations that failed earlier in this write, named in ARGV[5 … 4+k]. Then each job: its
    // destination's field in the hash, whose prefix is the job's kind (`l:` list, `s:` stream, `d:` dead letter,
    // `b:list:`/`b:stream:` batch), its position, destination and body, then what its kind needs:
    //   s: maxlen ('' for none), seq, channel, created_at
    //   b: maxlen, channel, staging key, max items, max age (ms), group JSON
    //   d: the field of the destination it stands in for ('' for none) A job at or below its destination's position was written before
    // (a replay): skipped. A job Redis refuses marks its destination failed: its later jobs are not tried (order), and
    // the position stays put. Returns {status per job (1 written, 0 duplicate, F refused, S not tried), batches sent,
    // items sent, ms until the next batch is due (-1 none open, -2 not looked at), batches dead-lettered, then pairs of
    // (job number, Redis' error)}.
    static let writeBody = """
        local hash, index, dead = ARGV[1], ARGV[2], ARGV[3]
        local failed, marks = {}, {}
        local k = tonumber(ARGV[4])
        for j = 1, k do failed[ARGV[4 + j]] = true end
        local a = 5 + k
        local status, errors = {}, {}
        local sent, items, deadened = 0, 0, 0
        local batched = false
        local now = nil
        local function mark_of(field)
          local mark = marks[field]
          if mark == nil then
            mark = redis.call('HGET', hash, field) or ''
            marks[field] = mark
          end
          return mark
        end
        local i = 0
        while a <= #ARGV do
          i = i + 1
          local field, pos, dest, body = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
          local kind = string.sub(field, 1, 1)
          if kind == 'b' and string.sub(field, 1, 9) == 'b:stream:' then kind = 'B' end
          local extra = a + 4
          if kind == 'l' then a = a + 4
          elseif kind == 's' then a = a + 8
          elseif kind == 'd' then a = a + 5
          else a = a + 10 end
          if failed[field] then
            status[i] = 'S'
          else
            local mark = mark_of(field)
            if mark ~= '' and pos <= mark then
              status[i] = '0'
            else
              local reply
              local staged = nil
              if kind == 'l' or kind == 'd' then
                reply = redis.pcall('LPUSH', dest, body)
              elseif kind == 's' then
                if ARGV[extra] == '' then
                  reply = redis.pcall('XADD', dest, '*', 'seq', ARGV[extra + 1], 'channel', ARGV[extra + 2], 'payload', body, 'created_at', ARGV[extra + 3])
                else
                  reply = redis.pcall('XADD', dest, 'MAXLEN', '~', ARGV[extra], '*', 'seq', ARGV[extra + 1], 'channel', ARGV[extra + 2], 'payload', body, 'created_at', ARGV[extra + 3])
                end
              else
                if now == nil then now = now_ms() end
                batched = true
                local staging = ARGV[extra + 2]
                local meta = staging .. ':meta'
                if redis.call('EXISTS', meta) == 0 then
                  redis.call('HSET', meta, 'destination', dest, 'kind', kind == 'B' and 'stream' or 'list', 'maxlen', ARGV[extra],
                    'group', ARGV[extra + 5], 'channel', ARGV[extra + 1], 'opened', now, 'order', redis.call('INCR', index .. ':order'))
                  redis.call('ZADD', index, now + tonumber(ARGV[extra + 4]), staging)
                end
                staged = redis.call('RPUSH', staging, body)
                reply = staged
              end
              if type(reply) == 'table' and reply.err then
                failed[field] = true
                status[i] = 'F'
                errors[#errors + 1] = i
                errors[#errors + 1] = reply.err
              else
                redis.call('HSET', hash, field, pos)
                marks[field] = pos
                status[i] = '1'
                if kind == 'd' and ARGV[extra] ~= '' then
                  local other = ARGV[extra]
                  local theirs = mark_of(other)
                  if theirs == '' or pos > theirs then
                    redis.call('HSET', hash, other, pos)
                    marks[other] = pos
                  end
                end
                if staged ~= nil and staged >= tonumber(ARGV[extra + 3]) then
                  local n, d = flush(index, ARGV[extra + 2], 'full', now, dead)
                  if n == nil then return redis.error_reply(d) end
                  sent = sent + 1
                  items = items + n
                  deadened = deadened + d
                end
              end
            end
          end
        end
        local due = -2
        if batched then due = next_due(index, now) end
        local reply = {table.concat(status), sent, items, due, deadened}
        for j = 1, #errors do reply[#reply + 1] = errors[j] end
        return reply
        """

    // KEYS: the batches' index, its order counter and the dead-letter list; the staging lists it finds in the index
    // are in the same slot (on a cluster, they carry the index's tag).
    // ARGV[1]: the batches' index; ARGV[2]: 'due' or 'all'; ARGV[3]: at most this many batches; ARGV[4]: the
    // dead-letter list. Returns {batches sent, items sent, ms until the next batch is due or -1, batches dead-lettered}.
    static let flushBody = """
        local index, dead = ARGV[1], ARGV[4]
        local now = now_ms()
        local found
        if ARGV[2] == 'all' then
          found = redis.call('ZRANGE', index, 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
        else
          found = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
        end
        -- Oldest first: by deadline, then in the order the batches were opened.
        local members = {}
        for j = 1, #found, 2 do
          local order = tonumber(redis.call('HGET', found[j] .. ':meta', 'order') or '0') or 0
          members[#members + 1] = {found[j], tonumber(found[j + 1]), order}
        end
        table.sort(members, function(x, y) if x[2] ~= y[2] then return x[2] < y[2] end return x[3] < y[3] end)
        local sent, items, deadened = 0, 0, 0
        for _, member in ipairs(members) do
          local n, d = flush(index, member[1], ARGV[2] == 'all' and 'drained' or 'due', now, dead)
          if n == nil then return redis.error_reply(d) end
          sent = sent + 1
          items = items + n
          deadened = deadened + d
        end
        return {sent, items, next_due(index, now), deadened}
        """

    // KEYS[1]: a delivered-positions hash; ARGV: pairs of (field, position). Moves each field's position up to the
    // given one (never down). Returns 0.
    static let advanceBody = """
        for j = 1, #ARGV, 2 do
          local mark = redis.call('HGET', KEYS[1], ARGV[j])
          if not mark or ARGV[j + 1] > mark then redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
        end
        return 0
        """
}
