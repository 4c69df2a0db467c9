package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

var manifests = []string{"../../examples/kubernetes/sidecar.yaml", "../../examples/kubernetes/cluster.yaml"}

// manifest is one example file, every document decoded strictly into the
// Kubernetes API's own types.
type manifest struct {
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	deployments []*appsv1.Deployment
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
	m := &manifest{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
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
			m.secrets[o.Name] = o
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
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

// TestKubernetesManifests: both examples decode strictly; friendflow's
// hardening is on its container, never the pod (where it would bind the
// application's container too); the admin token comes from the Secret.
func TestKubernetesManifests(t *testing.T) {
	for _, path := range manifests {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := loadManifest(t, path)
			pod, c := m.friendflowContainer(t)
			if psc := pod.SecurityContext; psc != nil && (psc.RunAsUser != nil || psc.RunAsNonRoot != nil || psc.RunAsGroup != nil || psc.SeccompProfile != nil) {
				t.Errorf("pod-level securityContext %+v: it binds every container of the pod; set it on the friendflow container", psc)
			}
			sc := c.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("friendflow container securityContext %+v", sc)
			}
			env := containerEnv(c)
			file, ok := env["FRIENDFLOW_ADMIN_TOKEN_FILE"]
			if !ok {
				t.Fatal("no FRIENDFLOW_ADMIN_TOKEN_FILE: an admin API on 0.0.0.0 does not start without a token")
			}
			secret, key := m.secretKeyAt(t, pod, c, file)
			if _, ok := m.secrets[secret].StringData[key]; !ok {
				t.Errorf("FRIENDFLOW_ADMIN_TOKEN_FILE %s is key %q of Secret %s, which the template lacks", file, key, secret)
			}
		})
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
// is, through its volume mounts.
func (m *manifest) secretKeyAt(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, file string) (string, string) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, vm.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				if _, ok := m.secrets[v.Secret.SecretName]; !ok {
					t.Fatalf("volume %s mounts Secret %s, not in the manifest", v.Name, v.Secret.SecretName)
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
				files = m.secrets[v.Secret.SecretName].StringData
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
		if strings.Contains(p.logs(), m.secrets["friendflow-secrets"].StringData["admin-token"]) {
			t.Fatal("the admin token is in the logs")
		}
	}
}
