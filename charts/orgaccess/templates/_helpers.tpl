{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "orgaccess.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: fullnameOverride, else the release name when it already contains the
chart name, else <release>-<chart>. Truncated so suffixed names stay valid.
*/}}
{{- define "orgaccess.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "orgaccess.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "orgaccess.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: orgaccess
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels: stable across upgrades (Deployment selectors are immutable). */}}
{{- define "orgaccess.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orgaccess.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ServiceAccount's name. */}}
{{- define "orgaccess.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "orgaccess.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's Kubernetes user name (its ServiceAccount's). */}}
{{- define "orgaccess.operatorUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "orgaccess.serviceAccountName" .) -}}
{{- end -}}

{{/* Name of the Service (the webhook and metrics). */}}
{{- define "orgaccess.serviceName" -}}
{{- printf "%s-webhook" (include "orgaccess.fullname" .) -}}
{{- end -}}

{{/* Name of the Secret with the webhook's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "orgaccess.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "orgaccess.fullname" .) -}}
{{- end -}}

{{/* The DNS names the apiserver may use for the Service. */}}
{{- define "orgaccess.serviceDnsNames" -}}
{{- $svc := include "orgaccess.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/*
The image reference: repository@digest, else repository:tag (default
appVersion). With global.imageRegistry (an umbrella chart's mirror), the
repository's own registry (its first part, when that has a dot or a colon or
is localhost) is replaced by it, or it is prefixed when it names none.
*/}}
{{- define "orgaccess.image" -}}
{{- $repository := .Values.image.repository -}}
{{- $global := .Values.global | default dict -}}
{{- with $global.imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) (regexReplaceAll "^([^/]*[.:][^/]*|localhost)/" $repository "") -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The pods' imagePullSecrets: global.imagePullSecrets then imagePullSecrets,
each a name or a `{name: ...}`, without repeats. Renders nothing when empty.
*/}}
{{- define "orgaccess.imagePullSecrets" -}}
{{- $global := .Values.global | default dict -}}
{{- $names := list -}}
{{- range concat ($global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- $name := . -}}
{{- if kindIs "map" . -}}{{- $name = get . "name" -}}{{- end -}}
{{- if and $name (not (has $name $names)) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- if $names }}
imagePullSecrets:
{{- range $names }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
Fails the render when two of the pod's listeners would bind the same port (the
container would crash-loop on "address in use").
*/}}
{{- define "orgaccess.checkPorts" -}}
{{- $ports := dict (toString .Values.admin.port) "admin.port" -}}
{{- $listeners := list -}}
{{- if .Values.webhook.enabled -}}{{- $listeners = append $listeners (list "webhook.port" .Values.webhook.port) -}}{{- end -}}
{{- if .Values.decision.https.enabled -}}{{- $listeners = append $listeners (list "decision.https.port" .Values.decision.https.port) -}}{{- end -}}
{{- if .Values.decision.nginx.enabled -}}{{- $listeners = append $listeners (list "decision.nginx.port" .Values.decision.nginx.port) -}}{{- end -}}
{{- range $listeners -}}
{{- $key := toString (index . 1) -}}
{{- if hasKey $ports $key -}}
{{- fail (printf "%s and %s are both %s: each listener needs its own container port" (get $ports $key) (index . 0) $key) -}}
{{- end -}}
{{- $_ := set $ports $key (index . 0) -}}
{{- end -}}
{{- end -}}

{{/*
The metadata the chart adds to each CRD (indented under `metadata:`). With
crds.keep, neither Helm (uninstall) nor Argo CD (pruning on a sync, or deleting
the Application with its resources) deletes them: deleting a CRD deletes every
organization's objects.
*/}}
{{- define "orgaccess.crdMetadata" -}}
{{- $annotations := .Values.crds.annotations | default dict -}}
{{- if .Values.crds.keep -}}
{{- $annotations = merge (dict "helm.sh/resource-policy" "keep" "argocd.argoproj.io/sync-options" "Prune=false,Delete=false") $annotations -}}
{{- end }}
{{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
  labels:
    {{- include "orgaccess.labels" . | nindent 4 }}
{{- end -}}
