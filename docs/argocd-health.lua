-- Argo CD health check for workflow.dev/Work, from the Work's status as the
-- operator writes it: the Succeeded condition first, then status.phase.
-- Healthy on success, Degraded on failure, Progressing otherwise (not yet
-- picked up, queued, running, retrying, or a re-run asked by a new spec.runId),
-- always with the operator's own message. Plain Lua 5.1, as Argo CD runs it.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the workflow operator to pick up the Work"
  return hs
end

local spec = obj.spec or {}
if spec.runId ~= status.runId and (status.phase == "success" or status.phase == "failure") then
  hs.status = "Progressing"
  hs.message = "Run " .. tostring(spec.runId) .. " requested"
  return hs
end

local succeeded = nil
local synced = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Succeeded" then
      succeeded = condition
    elseif condition.type == "BackendSynced" then
      synced = condition
    end
  end
end

local message = status.message
if (message == nil or message == "") and succeeded ~= nil then
  message = succeeded.message
end
if message == nil or message == "" then
  message = "phase " .. status.phase
end
if synced ~= nil and synced.status == "False" and synced.message ~= nil then
  message = message .. " (buckets not updated yet: " .. synced.message .. ")"
end
hs.message = message

local state = nil
if succeeded ~= nil then
  state = succeeded.status
elseif status.phase == "success" then
  state = "True"
elseif status.phase == "failure" then
  state = "False"
end

if state == "True" then
  hs.status = "Healthy"
elseif state == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
