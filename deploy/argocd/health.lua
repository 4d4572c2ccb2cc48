-- Argo CD health of orgaccess.dev Organization, Group, Member and ApiKey.
-- The same reading as kstatus (Flux `wait`, kpt, cli-utils) and `kubectl wait
-- --for=condition=Ready`: docs/status.md. Tested with lua5.1 on objects from a
-- real control plane (tests/operations/readiness.rs). argocd-cm.yaml embeds this file.
local hs = {status = "Progressing", message = "Waiting for the orgaccess operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for the orgaccess operator to observe generation " .. generation
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Stalled" and c.status == "True" then
      return {status = "Degraded", message = c.message}
    end
    if c.type == "Reconciling" and c.status == "True" then
      return {status = "Progressing", message = c.message}
    end
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  return hs
end
if ready.status == "True" then
  return {status = "Healthy", message = ready.message}
end
return {status = "Progressing", message = ready.message}
