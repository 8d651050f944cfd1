{{/* Chart name, overridable. */}}
{{- define "oke.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's resources: "<release>-<name>", or the release name when it
already contains the chart name. */}}
{{- define "oke.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "oke.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the exporter's pods. */}}
{{- define "oke.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the `helm test` pod: not the exporter's selector labels, so neither the
Service nor the NetworkPolicy of the exporter applies to it. */}}
{{- define "oke.testSelectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end -}}

{{/* Labels of every resource of the chart. */}}
{{- define "oke.labels" -}}
helm.sh/chart: {{ include "oke.chart" . }}
{{ include "oke.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openai-key-exporter
{{- end -}}

{{- define "oke.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "oke.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: a digest wins over a tag; the tag defaults to appVersion. */}}
{{- define "oke.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name and key of the Secret holding the admin key. */}}
{{- define "oke.secretName" -}}
{{- if .Values.adminKey.create -}}
{{- printf "%s-admin-key" (include "oke.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .Values.adminKey.existingSecret.name -}}
{{- end -}}
{{- end -}}

{{- define "oke.secretKey" -}}
{{- if .Values.adminKey.create -}}
admin-key
{{- else -}}
{{- .Values.adminKey.existingSecret.key -}}
{{- end -}}
{{- end -}}

{{/* Path of the mounted key file. */}}
{{- define "oke.adminKeyFile" -}}
{{- printf "%s/admin-key" (.Values.adminKey.mountPath | trimSuffix "/") -}}
{{- end -}}

{{/* Checks across values that a JSON schema cannot word clearly. Messages never echo the
admin key. */}}
{{- define "oke.validate" -}}
{{- if .Values.adminKey.create -}}
{{- if not .Values.adminKey.value -}}
{{- fail "adminKey.create is true but adminKey.value is empty: give the key, or set adminKey.create=false and adminKey.existingSecret.name" -}}
{{- end -}}
{{- if not (hasPrefix "sk-admin-" .Values.adminKey.value) -}}
{{- fail "adminKey.value is not an admin key: it must start with sk-admin- (project keys sk-proj-... cannot list API keys)" -}}
{{- end -}}
{{- else -}}
{{- if .Values.adminKey.value -}}
{{- fail "adminKey.value is set but adminKey.create is false: set adminKey.create=true to store it in a Secret the chart creates, or remove it and use adminKey.existingSecret" -}}
{{- end -}}
{{- if not .Values.adminKey.existingSecret.name -}}
{{- fail "adminKey.existingSecret.name is empty: name the Secret holding the admin key, or set adminKey.create=true with adminKey.value" -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if or (eq .name "OPENAI_ADMIN_KEY") (eq .name "OPENAI_ADMIN_KEY_FILE") -}}
{{- fail (printf "extraEnv: %s is set by the chart from adminKey (a mounted Secret file); an environment variable would put the key in the Deployment" .name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled -}}
{{- fail "serviceMonitor.enabled and podMonitor.enabled are both true: enable only one, or Prometheus scrapes every pod twice" -}}
{{- end -}}
{{- end -}}

{{/* The probes' shared timing fields. */}}
{{- define "oke.probeTiming" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end -}}

{{/* A label map as "k=v, k=v" for NOTES.txt. */}}
{{- define "oke.inlineLabels" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join ", " $pairs -}}
{{- end -}}
