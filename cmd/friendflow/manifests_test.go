package main

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

var manifests = []string{"../../examples/kubernetes/sidecar.yaml", "../../examples/kubernetes/cluster.yaml"}

// manifest is one example file, every document decoded strictly into the
// Kubernetes API's own types, and the Secrets its documentation creates.
type manifest struct {
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string][]string // Secret name: the keys `kubectl create secret` gives it
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
}

// secretCommandRE finds `kubectl create secret generic NAME ...` commands,
// continued over backslashed lines, in the docs and the manifests'
// comments; fromRE their keys (--from-file=KEY=PATH, --from-file=PATH,
// --from-literal=KEY=VALUE).
var (
	secretCommandRE = regexp.MustCompile(`kubectl create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)`)
	fromRE          = regexp.MustCompile(`--from-(file|literal)=([^\s=]+)(=?)`)
)

// createdSecrets returns the Secrets, with their keys, that the commands in
// text create; "# " comment prefixes are ignored.
func createdSecrets(text string) map[string][]string {
	text = regexp.MustCompile(`(?m)^#[ \t]*`).ReplaceAllString(text, "")
	out := map[string][]string{}
	for _, m := range secretCommandRE.FindAllStringSubmatch(text, -1) {
		for _, f := range fromRE.FindAllStringSubmatch(m[2], -1) {
			key := f[2]
			if f[1] == "file" && f[3] == "" {
				key = filepath.Base(key) // --from-file=PATH: the file's name
			}
			out[m[1]] = append(out[m[1]], key)
		}
	}
	return out
}

// loadManifest decodes every document of path with the Kubernetes API types,
// refusing unknown and duplicate fields as `kubectl apply
// --validate=strict` does.
func loadManifest(t *testing.T, path string) *manifest {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	// A placeholder applied as it is becomes a working credential, and
	// applied again it overwrites the real one.
	if strings.Contains(string(raw), "REPLACE_WITH") {
		t.Errorf("%s has a REPLACE_WITH placeholder", path)
	}
	m := &manifest{configMaps: map[string]*corev1.ConfigMap{}, secrets: createdSecrets(string(docs))}
	// What the file's own comments tell its reader to run must agree with
	// the docs.
	for name, keys := range createdSecrets(string(raw)) {
		for _, k := range keys {
			if !slices.Contains(m.secrets[name], k) {
				t.Errorf("%s's comments create key %q of Secret %s, which docs/kubernetes.md's commands do not", path, k, name)
			}
		}
	}
	for i, doc := range strings.Split("\n"+string(raw), "\n---\n") {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case " ":
			continue // comments only
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "apps/v1 StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "networking.k8s.io/v1 NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		default:
			t.Fatalf("%s document %d: unexpected %s %s", path, i, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", path, i, meta.Kind, err)
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Secret:
			t.Errorf("%s document %d: Secret %s: the manifests hold no Secret (its values would be placeholders); docs/kubernetes.md creates it with kubectl", path, i, o.Name)
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *appsv1.StatefulSet:
			m.statefulSets = append(m.statefulSets, o)
		}
	}
	return m
}

// friendflowContainer returns the pod spec and the container named
// friendflow of the manifest's one Deployment that runs it.
func (m *manifest) friendflowContainer(t *testing.T) (*corev1.PodSpec, *corev1.Container) {
	t.Helper()
	for _, d := range m.deployments {
		spec := &d.Spec.Template.Spec
		for i := range spec.Containers {
			if spec.Containers[i].Name == "friendflow" {
				return spec, &spec.Containers[i]
			}
		}
	}
	t.Fatal("no Deployment runs a container named friendflow")
	return nil, nil
}

// TestKubernetesManifests: both examples decode strictly and hold no
// Secret; friendflow's hardening is on its container, never the pod (where
// it would bind the application's container too), as the image's numeric
// user; every Secret key a pod reads is one the documented commands create;
// the admin token comes from one.
func TestKubernetesManifests(t *testing.T) {
	uid := dockerfileUID(t)
	for _, path := range manifests {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := loadManifest(t, path)
			pod, c := m.friendflowContainer(t)
			if psc := pod.SecurityContext; psc != nil && (psc.RunAsUser != nil || psc.RunAsNonRoot != nil || psc.RunAsGroup != nil || psc.SeccompProfile != nil) {
				t.Errorf("pod-level securityContext %+v: it binds every container of the pod; set it on the friendflow container", psc)
			}
			sc := c.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != uid ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("friendflow container securityContext %+v (runAsUser must be the Dockerfile's USER %d)", sc, uid)
			}
			env := containerEnv(c)
			file, ok := env["FRIENDFLOW_ADMIN_TOKEN_FILE"]
			if !ok {
				t.Fatal("no FRIENDFLOW_ADMIN_TOKEN_FILE: an admin API on 0.0.0.0 does not start without a token")
			}
			m.secretKeyAt(t, pod, c, file)
			for _, ss := range m.statefulSets {
				m.checkSecretRefs(t, &ss.Spec.Template.Spec)
			}
			for _, d := range m.deployments {
				m.checkSecretRefs(t, &d.Spec.Template.Spec)
			}
			if strings.HasSuffix(path, "cluster.yaml") {
				m.checkNATSSecured(t, env)
			}
			checkMemory(t, c, env)
		})
	}
}

// measuredPeakMiB is friendflow's largest peak resident set measured by
// bench/dlqmem.sh (dlq replay --rule of 25 000 of 100 000 dead letters,
// with the GOMEMLIMIT derived from a 128 MiB limit, docs/operations.md#memory);
// bench/load.sh's full load peaks lower.
const measuredPeakMiB = 101

// checkMemory: friendflow's container asks for memory and is limited to
// the measured peak plus at least 25%, and leaves GOMEMLIMIT to be derived
// from that limit (a value of its own would not follow a changed limit).
func checkMemory(t *testing.T, c *corev1.Container, env map[string]string) {
	t.Helper()
	req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
	if req.IsZero() || lim.IsZero() {
		t.Fatalf("friendflow container resources %+v: set a memory request and limit", c.Resources)
	}
	if lim.Value()*4 < measuredPeakMiB<<20*5 {
		t.Errorf("memory limit %s is under the measured peak (%d MiB) plus 25%%", lim, measuredPeakMiB)
	}
	if req.Cmp(*lim) > 0 {
		t.Errorf("memory request %s above the limit %s", req, lim)
	}
	if v, ok := env["GOMEMLIMIT"]; ok {
		t.Errorf("GOMEMLIMIT=%s: friendflow derives it from the container's limit", v)
	}
}

// dockerfileUID is the numeric user of the image's final USER line:
// Kubernetes verifies runAsNonRoot only against a numeric one.
func dockerfileUID(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER (\d+):(\d+)\s*$`).FindAllStringSubmatch(string(raw), -1)
	if len(m) != 1 || m[0][1] == "0" {
		t.Fatalf("the Dockerfile needs one numeric, non-root USER uid:gid line; found %q", m)
	}
	uid, err := strconv.ParseInt(m[0][1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// checkSecretRefs: every Secret a pod mounts or reads into its environment,
// and every key it selects, is one the documented commands create.
func (m *manifest) checkSecretRefs(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		keys, ok := m.secrets[v.Secret.SecretName]
		if !ok {
			t.Errorf("volume %s mounts Secret %s, which docs/kubernetes.md does not create", v.Name, v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			if !slices.Contains(keys, it.Key) {
				t.Errorf("volume %s selects key %q of Secret %s, which docs/kubernetes.md does not create", v.Name, it.Key, v.Secret.SecretName)
			}
		}
	}
	for _, c := range pod.Containers {
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			if !slices.Contains(m.secrets[ref.Name], ref.Key) {
				t.Errorf("container %s env %s reads key %q of Secret %s, which docs/kubernetes.md does not create", c.Name, e.Name, ref.Key, ref.Name)
			}
		}
	}
}

// checkNATSSecured: cluster.yaml's NATS configuration, parsed by
// nats-server's own parser with the password in the environment as the
// StatefulSet puts it there, takes clients over TLS with friendflow's user
// and password only, and routes over verified TLS; friendflow's URLs are
// tls:// and it checks the servers against the nats-tls CA.
func (m *manifest) checkNATSSecured(t *testing.T, env map[string]string) {
	t.Helper()
	if len(m.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets; want the NATS one", len(m.statefulSets))
	}
	nats := m.statefulSets[0].Spec.Template.Spec.Containers[0]
	var pwRef *corev1.SecretKeySelector
	for _, e := range nats.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			pwRef = e.ValueFrom.SecretKeyRef
			t.Setenv(e.Name, "0123456789e1abcdef-password")
		case e.ValueFrom != nil:
			t.Setenv(e.Name, "nats-0") // the pod's name
		}
	}
	if pwRef == nil || env["FRIENDFLOW_NATS_PASSWORD_FILE"] != "/etc/friendflow/secrets/"+pwRef.Key || pwRef.Name != "friendflow-secrets" {
		t.Errorf("NATS reads its password from %+v, friendflow from %s: not the same Secret key", pwRef, env["FRIENDFLOW_NATS_PASSWORD_FILE"])
	}
	cfg, err := conf.Parse(m.configMaps["nats-config"].Data["nats.conf"])
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	tlsOn := func(block any) bool {
		b, _ := block.(map[string]any)
		for _, k := range []string{"cert_file", "key_file", "ca_file"} {
			if f, _ := b[k].(string); !strings.HasPrefix(f, "/etc/nats-tls/") {
				return false
			}
		}
		return true
	}
	cluster, _ := cfg["cluster"].(map[string]any)
	routeTLS, _ := cluster["tls"].(map[string]any)
	if !tlsOn(cfg["tls"]) || !tlsOn(routeTLS) || routeTLS["verify"] != true {
		t.Errorf("nats.conf: clients and routes need TLS (routes verified both ways): tls %v, cluster.tls %v", cfg["tls"], routeTLS)
	}
	auth, _ := cfg["authorization"].(map[string]any)
	users, _ := auth["users"].([]any)
	if len(users) != 1 {
		t.Fatalf("nats.conf: authorization users %v; want friendflow's", users)
	}
	if u, _ := users[0].(map[string]any); u["user"] != env["FRIENDFLOW_NATS_USER"] || u["password"] != "0123456789e1abcdef-password" {
		t.Errorf("nats.conf: user %v; want %s with the password from the environment", u, env["FRIENDFLOW_NATS_USER"])
	}
	for _, u := range strings.Split(env["FRIENDFLOW_NATS_URL"], ",") {
		if !strings.HasPrefix(u, "tls://") {
			t.Errorf("FRIENDFLOW_NATS_URL %s: not tls://", u)
		}
	}
	if ca := env["FRIENDFLOW_NATS_TLS_CA"]; ca == "" {
		t.Error("no FRIENDFLOW_NATS_TLS_CA: friendflow would check NATS against the system's CAs")
	}
}

func containerEnv(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// secretKeyAt says which Secret and key a file path inside the container
// is, through its volume mounts, and that the documented commands create it.
func (m *manifest) secretKeyAt(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, file string) (string, string) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, vm.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				if !slices.Contains(m.secrets[v.Secret.SecretName], rel) {
					t.Fatalf("%s is key %q of Secret %s, which docs/kubernetes.md's commands do not create", file, rel, v.Secret.SecretName)
				}
				return v.Secret.SecretName, rel
			}
		}
	}
	t.Fatalf("%s is on no Secret volume of the container", file)
	return "", ""
}

// materialize lays the container's volumes out under dir as the kubelet
// would (ConfigMap and Secret keys as files, emptyDir as a directory) and
// returns the container's environment with mount paths moved there and
// listen ports replaced by free ones.
func (m *manifest) materialize(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, dir string) map[string]string {
	t.Helper()
	moved := map[string]string{}
	for _, vm := range c.VolumeMounts {
		local := filepath.Join(dir, vm.Name)
		if err := os.MkdirAll(local, 0o755); err != nil {
			t.Fatal(err)
		}
		moved[vm.MountPath] = local
		for _, v := range pod.Volumes {
			if v.Name != vm.Name {
				continue
			}
			files := map[string]string{}
			switch {
			case v.ConfigMap != nil:
				files = m.configMaps[v.ConfigMap.Name].Data
			case v.Secret != nil:
				// What the documented command creates: random values.
				for _, k := range m.secrets[v.Secret.SecretName] {
					if len(v.Secret.Items) == 0 || slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Key == k }) {
						files[k] = randomHex(t)
					}
				}
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(local, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	env := containerEnv(c)
	for k, v := range env {
		for mount, local := range moved {
			if rest, ok := strings.CutPrefix(v, mount); ok {
				env[k] = local + rest
			}
		}
		if k == "FRIENDFLOW_LISTEN" || k == "FRIENDFLOW_ADMIN_LISTEN" {
			host, _, err := net.SplitHostPort(v)
			if err != nil {
				t.Fatalf("%s=%s: %v", k, v, err)
			}
			_, port, _ := net.SplitHostPort(freePort(t))
			env[k] = net.JoinHostPort(host, port)
		}
	}
	return env
}

// TestKubernetesManifestsStart: the shipped manifests' friendflow
// configuration is accepted by serve (both), and the sidecar's starts for
// real and becomes ready with its ConfigMap's rules, its admin API open to
// probes and closed to callers without the Secret's token.
func TestKubernetesManifestsStart(t *testing.T) {
	for _, path := range manifests {
		m := loadManifest(t, path)
		pod, c := m.friendflowContainer(t)
		dir := t.TempDir()
		env := m.materialize(t, pod, c, dir)
		if _, err := parseServe(c.Args[1:], func(k string) string { return env[k] }); err != nil {
			t.Fatalf("%s: serve refuses the manifest's configuration: %v", path, err)
		}
		if strings.HasSuffix(path, "cluster.yaml") {
			continue // needs the NATS cluster of the manifest
		}
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		p := start(t, kv, c.Args...)
		_, port, _ := net.SplitHostPort(env["FRIENDFLOW_ADMIN_LISTEN"])
		admin := "127.0.0.1:" + port
		waitReady(t, admin)
		code, out, errOut := runBinary(t, nil, "rules", "--admin-url", admin)
		if code != 1 || !strings.Contains(errOut, "401") {
			t.Fatalf("%s: rules without the token: exit %d %s%s", path, code, out, errOut)
		}
		code, out, errOut = runBinary(t, []string{"FRIENDFLOW_ADMIN_URL=" + admin, "FRIENDFLOW_ADMIN_TOKEN_FILE=" + env["FRIENDFLOW_ADMIN_TOKEN_FILE"]}, "rules")
		if code != 0 || !strings.Contains(out, "welcome-on-accept") {
			t.Fatalf("%s: rules with the token: exit %d %s%s\n%s", path, code, out, errOut, p.logs())
		}
		token, err := os.ReadFile(env["FRIENDFLOW_ADMIN_TOKEN_FILE"])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p.logs(), string(token)) {
			t.Fatal("the admin token is in the logs")
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
