"""tests/k8s/check.py MANIFESTS.yaml: what the Kubernetes schemas cannot say.

Reads the rendered manifests (multi-document YAML, `kubectl kustomize`
output or the plain files) and checks that they hold together and keep
chatmesh's rules: every workload has readiness and liveness probes, the
gateways' readiness is /readyz, the store keeps its data on a claimed volume
and runs alone, rolling updates never drop below the wanted count, each pod
mounts only its own CURVE secret key, every name referred to (ConfigMap,
Secret, Service, PDB selector) exists, and the Ingress carries the SSE
settings. Prints one line per check; exits 1 when one fails, 2 when the
file cannot be read.
"""
import sys

import yaml

SERVICES = ("store", "broadcaster", "regenerator", "gateway")


def main(path):
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
    except (OSError, yaml.YAMLError) as e:
        print(f"k8s check: cannot read {path}: {e}")
        return 2
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    failed = []
    passed = []

    def check(desc, cond):
        print(("ok   " if cond else "FAIL ") + desc)
        (passed if cond else failed).append(desc)

    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
    check("a workload per service", sorted(workloads) == sorted(f"chatmesh-{s}" for s in SERVICES))
    secrets = by_kind.get("Secret", {})

    def secret_named(prefix):
        # kustomize suffixes generated names with a hash of the content.
        return any(n == prefix or n.startswith(prefix + "-") for n in secrets)

    for name, w in sorted(workloads.items()):
        service = name.removeprefix("chatmesh-")
        pod = w["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        check(f"{name}: selector matches its pods",
              all(labels.get(k) == v for k, v in w["spec"]["selector"]["matchLabels"].items()))
        for c in pod["spec"]["containers"]:
            check(f"{name}: readiness and liveness probes", "readinessProbe" in c and "livenessProbe" in c)
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            check(f"{name}: CURVE identity {service}", env.get("CHATMESH_CURVE_IDENTITY") == service)
            for ref in c.get("envFrom", []):
                cm = ref.get("configMapRef", {}).get("name")
                check(f"{name}: ConfigMap {cm} exists", cm in by_kind.get("ConfigMap", {}))
        sc = pod["spec"].get("securityContext", {})
        check(f"{name}: runs as the image's user (10001), not root",
              sc.get("runAsUser") == 10001 and sc.get("runAsNonRoot") is True)
        for v in pod["spec"].get("volumes", []):
            if "secret" not in v:
                continue
            s = v["secret"]
            check(f"{name}: Secret {s['secretName']} exists", not secrets or secret_named(s["secretName"]))
            own = [i["key"] for i in s.get("items", []) if i["key"].endswith(".cert_secret")]
            if s.get("items"):
                check(f"{name}: mounts only its own CURVE secret key", own == [f"{service}.cert_secret"])
                paths = sorted(i["path"] for i in s["items"] if not i["key"].endswith(".cert_secret"))
                check(f"{name}: every public key under public/",
                      paths == sorted(f"public/{x}.cert" for x in SERVICES))

    gw = workloads.get("chatmesh-gateway")
    if gw:
        c = gw["spec"]["template"]["spec"]["containers"][0]
        check("gateway: ready means /readyz", c["readinessProbe"].get("httpGet", {}).get("path") == "/readyz")
        check("gateway: alive means /healthz", c["livenessProbe"].get("httpGet", {}).get("path") == "/healthz")
        ru = gw["spec"].get("strategy", {}).get("rollingUpdate", {})
        check("gateway: a rolling update keeps every wanted pod ready (maxUnavailable 0)",
              ru.get("maxUnavailable") == 0 and ru.get("maxSurge", 0) != 0)
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        check("gateway: the JWT secret comes from a file on the jwt volume",
              (env.get("CHATMESH_JWT_SECRET_FILE") or "").startswith("/var/run/chatmesh/jwt/")
              and "CHATMESH_JWT_SECRET" not in env)
    store = workloads.get("chatmesh-store")
    if store:
        check("store: a StatefulSet of one", store["kind"] == "StatefulSet" and store["spec"]["replicas"] == 1)
        claims = [t["metadata"]["name"] for t in store["spec"].get("volumeClaimTemplates", [])]
        mounts = {m["name"]: m["mountPath"] for m in store["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
        check("store: its data dir is a claimed volume",
              "data" in claims and mounts.get("data") == "/var/lib/chatmesh/data")

    pods = {n: w["spec"]["template"]["metadata"].get("labels", {}) for n, w in workloads.items()}

    def selects(selector):
        return [n for n, labels in pods.items() if all(labels.get(k) == v for k, v in selector.items())]

    for name, svc in sorted(by_kind.get("Service", {}).items()):
        check(f"Service {name} selects a workload", len(selects(svc["spec"]["selector"])) == 1)
        if name != "chatmesh-gateway":
            check(f"Service {name}: headless (the name is the pod)", svc["spec"].get("clusterIP") == "None")
    pdbs = by_kind.get("PodDisruptionBudget", {})
    check("a PodDisruptionBudget for the gateways", any(
        selects(p["spec"]["selector"]["matchLabels"]) == ["chatmesh-gateway"] for p in pdbs.values()))
    for name, p in sorted(pdbs.items()):
        check(f"PDB {name} selects a workload", len(selects(p["spec"]["selector"]["matchLabels"])) == 1)

    ingresses = list(by_kind.get("Ingress", {}).values())
    check("one Ingress", len(ingresses) == 1)
    for ing in ingresses:
        a = ing["metadata"].get("annotations", {})
        check("Ingress: proxy buffering off (SSE)", a.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off")
        check("Ingress: read timeout of an hour or more (SSE)",
              int(a.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")) >= 3600)
        backends = [p["backend"]["service"]["name"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
        check("Ingress: routes to the gateway Service",
              backends and all(b in by_kind.get("Service", {}) for b in backends))
        check("Ingress: TLS", bool(ing["spec"].get("tls")))

    print(f"k8s check: {len(passed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: check.py MANIFESTS.yaml")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
