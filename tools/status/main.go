// status reads Kubernetes objects (a JSON List, as `kubectl get -o json`
// prints) on stdin and prints, one JSON line per object, what the real
// kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status, what Flux's
// `wait: true`, kpt and cli-utils use) computes for it, and, given a Flux
// Kustomization file with spec.healthCheckExprs, what those CEL expressions
// say, evaluated the way kustomize-controller does (observedGeneration first,
// then inProgress, failed, current; none true: InProgress).
//
// Built by tools/build-status.sh; used by tests/operations/readiness.rs.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type exprs struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Current    string `json:"current"`
	InProgress string `json:"inProgress"`
	Failed     string `json:"failed"`
}

type out struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Kstatus   string `json:"kstatus"`
	Message   string `json:"message"`
	Flux      string `json:"flux,omitempty"`
	FluxError string `json:"fluxError,omitempty"`
}

func main() {
	fluxFile := flag.String("flux", "", "a Flux Kustomization (YAML) whose spec.healthCheckExprs to evaluate")
	flag.Parse()
	checks := map[string]exprs{}
	if *fluxFile != "" {
		raw, err := os.ReadFile(*fluxFile)
		must(err)
		// The Kustomization is read loosely, its healthCheckExprs strictly
		// (a misspelt field would silently drop an expression).
		var k struct {
			Spec struct {
				HealthCheckExprs json.RawMessage `json:"healthCheckExprs"`
			} `json:"spec"`
		}
		must(yaml.Unmarshal(raw, &k))
		var list []exprs
		dec := json.NewDecoder(bytes.NewReader(k.Spec.HealthCheckExprs))
		dec.DisallowUnknownFields()
		must(dec.Decode(&list))
		for _, e := range list {
			if e.Current == "" {
				must(fmt.Errorf("%s: current is required", e.Kind))
			}
			checks[e.APIVersion+"/"+e.Kind] = e
		}
		if len(checks) == 0 {
			must(fmt.Errorf("%s: no spec.healthCheckExprs", *fluxFile))
		}
	}
	env, err := cel.NewEnv(
		cel.Variable("apiVersion", cel.DynType),
		cel.Variable("kind", cel.DynType),
		cel.Variable("metadata", cel.DynType),
		cel.Variable("spec", cel.DynType),
		cel.Variable("status", cel.DynType),
		cel.OptionalTypes(),
		ext.Strings(),
	)
	must(err)

	in, err := io.ReadAll(bufio.NewReader(os.Stdin))
	must(err)
	// Decoded as the apiserver's clients do (integers stay int64).
	var objects unstructured.UnstructuredList
	must(objects.UnmarshalJSON(in))
	enc := json.NewEncoder(os.Stdout)
	for i := range objects.Items {
		u := &objects.Items[i]
		item := u.Object
		res, err := status.Compute(u)
		must(err)
		o := out{Kind: u.GetKind(), Name: u.GetName(), Kstatus: res.Status.String(), Message: res.Message}
		if e, ok := checks[u.GetAPIVersion()+"/"+u.GetKind()]; ok {
			s, err := flux(env, e, item)
			if err != nil {
				o.FluxError = err.Error()
			}
			o.Flux = s
		}
		must(enc.Encode(o))
	}
}

// flux evaluates one kind's expressions as kustomize-controller does.
func flux(env *cel.Env, e exprs, obj map[string]any) (string, error) {
	gen, hasGen, _ := unstructured.NestedInt64(obj, "metadata", "generation")
	observed, hasObserved, _ := unstructured.NestedInt64(obj, "status", "observedGeneration")
	if hasGen && hasObserved && gen != observed {
		return status.InProgressStatus.String(), nil
	}
	vars := map[string]any{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": obj["metadata"], "spec": nil, "status": nil}
	if v, ok := obj["spec"]; ok {
		vars["spec"] = v
	}
	if v, ok := obj["status"]; ok {
		vars["status"] = v
	}
	for _, step := range []struct {
		expr   string
		result status.Status
	}{{e.InProgress, status.InProgressStatus}, {e.Failed, status.FailedStatus}, {e.Current, status.CurrentStatus}} {
		if step.expr == "" {
			continue
		}
		ast, iss := env.Compile(step.expr)
		if iss.Err() != nil {
			return "", iss.Err()
		}
		prg, err := env.Program(ast)
		if err != nil {
			return "", err
		}
		v, _, err := prg.Eval(vars)
		if err != nil {
			return "", err
		}
		b, ok := v.Value().(bool)
		if !ok {
			return "", fmt.Errorf("%q is not a boolean expression", step.expr)
		}
		if b {
			return step.result.String(), nil
		}
	}
	return status.InProgressStatus.String(), nil
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
}
