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

{{/* The image reference: repository@digest, else repository:tag (default appVersion). */}}
{{- define "orgaccess.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The metadata the chart adds to each CRD (indented under `metadata:`). */}}
{{- define "orgaccess.crdMetadata" -}}
{{- if .Values.crds.keep }}
  annotations:
    helm.sh/resource-policy: keep
{{- end }}
  labels:
    {{- include "orgaccess.labels" . | nindent 4 }}
{{- end -}}
