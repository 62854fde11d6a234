-- GET `atlas.path` .. <id> for each of `atlas.ids` in turn (the preamble evidence/wrk.py writes),
-- so that reads spread over many existing rows rather than hitting one.
local next_id = 0

setup = function(thread)
  -- threads start at different offsets; otherwise they read the same rows in lockstep
  thread:set("offset", math.random(1, 1000))
end

request = function()
  next_id = (next_id + (offset or 0)) % #atlas.ids + 1
  offset = 0
  return wrk.format("GET", atlas.path .. atlas.ids[next_id])
end
