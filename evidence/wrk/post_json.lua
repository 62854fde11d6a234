-- POST a JSON body made from `atlas.body` (the preamble evidence/wrk.py writes), where
--   {n}     becomes a value unique across threads, requests and runs (e.g. for unique e-mails)
--   {id}    becomes the next of `atlas.ids`, round robin (e.g. an existing owner)
local counter = 0
local next_id = 0
local thread_no = 0

setup = function(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
end

request = function()
  counter = counter + 1
  local unique = atlas.nonce .. "-" .. tid .. "-" .. counter
  local body = atlas.body:gsub("{n}", unique)
  if #atlas.ids > 0 then
    next_id = next_id % #atlas.ids + 1
    body = body:gsub("{id}", atlas.ids[next_id])
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
