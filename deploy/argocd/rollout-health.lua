-- Argo CD health check for kulta Rollouts (kulta.io, kind Rollout).
-- Install it in argocd-cm under `resource.customizations.health.kulta.io_Rollout`
-- (deploy/argocd/argocd-cm-patch.yaml does). Argo CD runs it with `obj`, the live Rollout.
--   Completed                       -> Healthy
--   Paused (waiting for a person)   -> Suspended
--   Failed                          -> Degraded
--   anything else, or a status that does not yet follow the latest generation -> Progressing
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for kulta to take the Rollout up"
  return hs
end
if status.observedGeneration == nil or status.observedGeneration < obj.metadata.generation then
  -- An edit kulta has not taken yet, or one deferred until the current revision is stable.
  hs.status = "Progressing"
  hs.message = "generation " .. tostring(obj.metadata.generation) .. " is not applied yet"
  if status.message ~= nil then
    hs.message = hs.message .. ": " .. status.message
  end
  return hs
end
local message = status.message or status.phase
if status.phase == "Completed" then
  hs.status = "Healthy"
elseif status.phase == "Paused" then
  hs.status = "Suspended"
elseif status.phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
