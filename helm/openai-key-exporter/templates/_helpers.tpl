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
{{- if .Values.organizations -}}
{{- include "oke.validateOrganizations" . -}}
{{- else if .Values.adminKey.create -}}
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
{{- include "oke.validateConfigFile" . -}}
{{- include "oke.validateWebConfig" . -}}
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

{{/* --- Protecting /metrics: the web config, the certificate, and how clients follow. --- */}}

{{/* Fixed paths where the web config and the certificate Secret are mounted. A web config
of your own (webConfig.existingSecret) names the certificate files under oke.tlsDir. */}}
{{- define "oke.webConfigDir" -}}/etc/openai-key-exporter/web-config{{- end -}}
{{- define "oke.webConfigFile" -}}{{ include "oke.webConfigDir" . }}/web-config.yml{{- end -}}
{{- define "oke.tlsDir" -}}/etc/openai-key-exporter/tls{{- end -}}

{{/* The Secret holding web-config.yml: the chart's own, or webConfig.existingSecret. */}}
{{- define "oke.webConfigSecretName" -}}
{{- if .Values.webConfig.existingSecret -}}
{{- .Values.webConfig.existingSecret -}}
{{- else -}}
{{- printf "%s-web-config" (include "oke.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "true" when the exporter serves https (tls.existingSecret), else empty. */}}
{{- define "oke.tlsEnabled" -}}
{{- if and .Values.webConfig.enabled .Values.tls.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* "true" when every client, the kubelet's probes included, must present a certificate. */}}
{{- define "oke.clientCertRequired" -}}
{{- if and (include "oke.tlsEnabled" .) (eq .Values.tls.clientAuthType "RequireAndVerifyClientCert") -}}true{{- end -}}
{{- end -}}

{{- define "oke.scrapeScheme" -}}
{{- if include "oke.tlsEnabled" . -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{/* The web config file the chart writes: webConfig.content with the certificate files of
tls.existingSecret (and the client CA and client_auth_type of tls.clientAuthType). */}}
{{- define "oke.webConfigDocument" -}}
{{- $document := deepCopy .Values.webConfig.content -}}
{{- if include "oke.tlsEnabled" . -}}
{{- $dir := include "oke.tlsDir" . -}}
{{- $tls := dict "cert_file" (printf "%s/tls.crt" $dir) "key_file" (printf "%s/tls.key" $dir) -}}
{{- if ne .Values.tls.clientAuthType "NoClientCert" -}}
{{- $_ := set $tls "client_auth_type" .Values.tls.clientAuthType -}}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" $dir) -}}
{{- end -}}
{{- $_ := set $document "tls_server_config" (merge $tls (default (dict) $document.tls_server_config)) -}}
{{- end -}}
# The exporter's web config (exporter-toolkit format), written by the openai-key-exporter chart.
{{ toYaml $document }}
{{- end -}}

{{/* A probe: https when TLS is on; a TCP check when every client must present a certificate,
which the kubelet cannot. */}}
{{- define "oke.probeHandler" -}}
{{- if include "oke.clientCertRequired" .root -}}
tcpSocket:
  port: http
{{- else -}}
httpGet:
  path: {{ .path }}
  port: http
  {{- if include "oke.tlsEnabled" .root }}
  scheme: HTTPS
  {{- end }}
{{- end -}}
{{- end -}}

{{/* The scrape settings of the helm test pod, as YAML {tlsConfig, basicAuth}: tests.* when
given, else the enabled monitor's when the test pod can read its Secrets (same namespace). */}}
{{- define "oke.scrapeClient" -}}
{{- $monitor := dict -}}
{{- if .Values.serviceMonitor.enabled -}}
{{- if eq (default .Release.Namespace .Values.serviceMonitor.namespace) .Release.Namespace -}}
{{- $monitor = .Values.serviceMonitor -}}
{{- end -}}
{{- else if .Values.podMonitor.enabled -}}
{{- if eq (default .Release.Namespace .Values.podMonitor.namespace) .Release.Namespace -}}
{{- $monitor = .Values.podMonitor -}}
{{- end -}}
{{- else if and .Values.organizations .Values.probe.enabled -}}
{{- if eq (default .Release.Namespace .Values.probe.namespace) .Release.Namespace -}}
{{- $monitor = .Values.probe -}}
{{- end -}}
{{- end -}}
{{- $tlsConfig := .Values.tests.tlsConfig | default $monitor.tlsConfig | default (dict) -}}
{{- $basicAuth := .Values.tests.basicAuth | default $monitor.basicAuth | default (dict) -}}
{{- toYaml (dict "tlsConfig" $tlsConfig "basicAuth" $basicAuth) -}}
{{- end -}}

{{/* The scheme, tlsConfig and basicAuth of a monitor's endpoint. */}}
{{- define "oke.monitorAuth" -}}
scheme: {{ include "oke.scrapeScheme" .root }}
{{- with .monitor.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .monitor.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Checks of webConfig, tls and the monitors' scrape settings. Messages never echo a
password or a hash. */}}
{{- define "oke.validateWebConfig" -}}
{{- $web := .Values.webConfig -}}
{{- $tls := .Values.tls -}}
{{- $content := $web.content -}}
{{- if not $web.enabled -}}
{{- if $web.existingSecret -}}
{{- fail "webConfig.existingSecret is set but webConfig.enabled is false: set webConfig.enabled=true to use it" -}}
{{- end -}}
{{- if $content -}}
{{- fail "webConfig.content is set but webConfig.enabled is false: set webConfig.enabled=true to use it" -}}
{{- end -}}
{{- if $tls.existingSecret -}}
{{- fail "tls.existingSecret is set but webConfig.enabled is false: the exporter serves TLS only through its web config; set webConfig.enabled=true" -}}
{{- end -}}
{{- else -}}
{{- if and $web.existingSecret $content -}}
{{- fail "webConfig.existingSecret and webConfig.content are both set: the web config comes from one of them" -}}
{{- end -}}
{{- if not (or $web.existingSecret $content $tls.existingSecret) -}}
{{- fail "webConfig.enabled is true but gives the exporter no web config: set webConfig.existingSecret (a Secret holding web-config.yml), webConfig.content, or tls.existingSecret (TLS only)" -}}
{{- end -}}
{{- end -}}
{{- if and (ne $tls.clientAuthType "NoClientCert") (not $tls.existingSecret) -}}
{{- fail (printf "tls.clientAuthType is %s but tls.existingSecret is empty: client certificates need TLS, and their CA is ca.crt of that Secret" $tls.clientAuthType) -}}
{{- end -}}
{{- if and $content.tls_server_config (not $tls.existingSecret) -}}
{{- fail "webConfig.content.tls_server_config is set but tls.existingSecret is empty: the certificate and key come from that Secret" -}}
{{- end -}}
{{- range $user, $hash := $content.basic_auth_users -}}
{{- if not (regexMatch "^\\$2[abxy]\\$(0[4-9]|[12][0-9]|3[01])\\$[./A-Za-z0-9]{53}$" (toString $hash)) -}}
{{- fail (printf "webConfig.content.basic_auth_users.%s is not a bcrypt hash: give the hash ($2y$10$..., from htpasswd -nBC 10 %s), never the password" $user $user) -}}
{{- end -}}
{{- end -}}
{{- if and $content.basic_auth_users (not $tls.existingSecret) (not $web.allowInsecureBasicAuth) -}}
{{- fail "webConfig.content.basic_auth_users without tls.existingSecret would send passwords in clear text: set tls.existingSecret, or webConfig.allowInsecureBasicAuth=true when TLS ends in front of the exporter" -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if or (eq .name "OPENAI_EXPORTER_WEB_CONFIG_FILE") (eq .name "OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH") -}}
{{- fail (printf "extraEnv: %s is set by the chart from webConfig; the probes, monitors and test follow those values" .name) -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraArgs -}}
{{- if or (hasPrefix "--web.config.file" .) (hasPrefix "--web.allow-insecure-basic-auth" .) (hasPrefix "--no-web.allow-insecure-basic-auth" .) -}}
{{- fail (printf "extraArgs: %s is set by the chart from webConfig; the probes, monitors and test follow those values" (regexReplaceAll "=.*" . "")) -}}
{{- end -}}
{{- end -}}
{{- range $kind := list "serviceMonitor" "podMonitor" -}}
{{- $monitor := get $.Values $kind -}}
{{- if $monitor.enabled -}}
{{- include "oke.validateMonitor" (dict "root" $ "kind" $kind "monitor" $monitor) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.organizations .Values.probe.enabled -}}
{{- include "oke.validateMonitor" (dict "root" . "kind" "probe" "monitor" .Values.probe "byServiceName" true) -}}
{{- end -}}
{{- include "oke.validateScrapeClient" (dict "root" . "kind" "tests" "client" .Values.tests) -}}
{{- end -}}

{{/* A monitor: https needs a tlsConfig, mutual TLS a client certificate, basic auth
credentials. A monitor that scrapes the Service's DNS name (byServiceName: the Probe) needs
no serverName when the certificate names the Service. */}}
{{- define "oke.validateMonitor" -}}
{{- $kind := .kind -}}
{{- $tlsConfig := .monitor.tlsConfig -}}
{{- $root := .root -}}
{{- if include "oke.tlsEnabled" $root -}}
{{- if not $tlsConfig -}}
{{- fail (printf "tls.existingSecret is set, so Prometheus scrapes over https: set %s.tlsConfig (%s to verify the exporter's certificate, or insecureSkipVerify: true)" $kind (ternary "ca" "ca and serverName" (eq .byServiceName true))) -}}
{{- end -}}
{{- if and (not .byServiceName) (not $tlsConfig.insecureSkipVerify) (not $tlsConfig.serverName) -}}
{{- fail (printf "%s.tlsConfig.serverName is empty: Prometheus scrapes the pod IP, which the exporter's certificate does not name; set it to a DNS name of the certificate (e.g. %s.%s.svc)" $kind (include "oke.fullname" $root) $root.Release.Namespace) -}}
{{- end -}}
{{- if and (include "oke.clientCertRequired" $root) (not (and $tlsConfig.cert $tlsConfig.keySecret)) -}}
{{- fail (printf "tls.clientAuthType is RequireAndVerifyClientCert: %s.tlsConfig needs cert and keySecret, Prometheus' client certificate" $kind) -}}
{{- end -}}
{{- end -}}
{{- if and $root.Values.webConfig.enabled $root.Values.webConfig.content.basic_auth_users (not .monitor.basicAuth) -}}
{{- fail (printf "webConfig.content.basic_auth_users is set: give %s.basicAuth (a Secret with the user and password), or Prometheus is refused with 401" $kind) -}}
{{- end -}}
{{- include "oke.validateScrapeClient" (dict "root" $root "kind" $kind "client" .monitor) -}}
{{- end -}}

{{/* The tlsConfig and basicAuth of a scraper (a monitor or the test pod) hang together. */}}
{{- define "oke.validateScrapeClient" -}}
{{- $kind := .kind -}}
{{- $tlsConfig := .client.tlsConfig -}}
{{- $basicAuth := .client.basicAuth -}}
{{- if and $tlsConfig (not (include "oke.tlsEnabled" .root)) -}}
{{- fail (printf "%s.tlsConfig is set but tls.existingSecret is empty: the exporter serves plain HTTP" $kind) -}}
{{- end -}}
{{- if and $tlsConfig.cert (not $tlsConfig.keySecret) -}}
{{- fail (printf "%s.tlsConfig.cert needs %s.tlsConfig.keySecret (the client certificate's key)" $kind $kind) -}}
{{- end -}}
{{- if and $tlsConfig.keySecret (not $tlsConfig.cert) -}}
{{- fail (printf "%s.tlsConfig.keySecret needs %s.tlsConfig.cert (the client certificate)" $kind $kind) -}}
{{- end -}}
{{- if and $basicAuth (not (and $basicAuth.username $basicAuth.password)) -}}
{{- fail (printf "%s.basicAuth needs both username and password (Secret key references)" $kind) -}}
{{- end -}}
{{- end -}}

{{/* --- Several organizations: the config file, their keys, their scrape targets. --- */}}

{{/* Fixed paths: the config file (a ConfigMap) and the organizations' key files, one
directory per organization (/run/secrets/openai/<name>/admin-key). */}}
{{- define "oke.organizationsDir" -}}/etc/openai-key-exporter/organizations{{- end -}}
{{- define "oke.organizationsFile" -}}{{ include "oke.organizationsDir" . }}/organizations.yml{{- end -}}
{{- define "oke.organizationKeysDir" -}}/run/secrets/openai{{- end -}}

{{- define "oke.organizationsConfigMapName" -}}
{{- printf "%s-organizations" (include "oke.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The exporter's config file: one entry per organization, with only the values given, so
the others fall back to the exporter's flags and environment (the chart's settings). */}}
{{- define "oke.organizationsDocument" -}}
{{- $keys := include "oke.organizationKeysDir" . -}}
{{- $organizations := list -}}
{{- range .Values.organizations -}}
{{- $entry := dict "name" .name "admin_key_file" (printf "%s/%s/admin-key" $keys .name) -}}
{{- with .baseUrl }}{{ $_ := set $entry "base_url" . }}{{ end -}}
{{- with .collectors }}{{ $_ := set $entry "collectors" . }}{{ end -}}
{{- with .projectInclude }}{{ $_ := set $entry "project_include" . }}{{ end -}}
{{- with .projectExclude }}{{ $_ := set $entry "project_exclude" . }}{{ end -}}
{{- if hasKey . "includeArchived" }}{{ $_ := set $entry "include_archived" .includeArchived }}{{ end -}}
{{- $organizations = append $organizations $entry -}}
{{- end -}}
# The exporter's organizations (--config.file), written by the openai-key-exporter chart.
# No secrets: each admin_key_file is a Secret key mounted read-only, re-read at each refresh.
{{ toYaml (dict "organizations" $organizations) }}
{{- end -}}

{{/* The relabelings that name the organization of a /probe scrape after its target, as the
README's scrape_configs example does: the alerts and dashboards group by organization. */}}
{{- define "oke.organizationRelabelings" -}}
- action: replace
  sourceLabels: [__param_target]
  targetLabel: organization
- action: replace
  sourceLabels: [__param_target]
  targetLabel: instance
{{- end -}}

{{/* Checks of organizations that a JSON schema cannot express (unique names, one key per
organization) and of the values they replace. Messages name Secrets, never a key. */}}
{{- define "oke.validateOrganizations" -}}
{{- if or .Values.adminKey.create .Values.adminKey.value -}}
{{- fail "organizations is set, so adminKey is not used: each organization's key comes from its existingSecret; remove adminKey.create and adminKey.value" -}}
{{- end -}}
{{- $names := dict -}}
{{- $keys := dict -}}
{{- range .Values.organizations -}}
{{- if hasKey $names .name -}}
{{- fail (printf "organizations: the name '%s' is given twice: each organization is a scrape target (/probe?target=%s) and needs a name of its own" .name .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- $key := printf "%s/%s" .existingSecret (default "admin-key" .key) -}}
{{- if hasKey $keys $key -}}
{{- fail (printf "organizations '%s' and '%s' read the same admin key (Secret %s, key %s): an admin key belongs to one organization" (get $keys $key) .name .existingSecret (default "admin-key" .key)) -}}
{{- end -}}
{{- $_ := set $keys $key .name -}}
{{- end -}}
{{- end -}}

{{/* The config file comes from organizations only: one set elsewhere would name a file the
pod does not have, and the monitors would not know its targets. */}}
{{- define "oke.validateConfigFile" -}}
{{- range .Values.extraEnv -}}
{{- if eq .name "OPENAI_EXPORTER_CONFIG_FILE" -}}
{{- fail "extraEnv: OPENAI_EXPORTER_CONFIG_FILE is set by the chart from organizations: list the organizations there" -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraArgs -}}
{{- if hasPrefix "--config.file" . -}}
{{- fail "extraArgs: --config.file is set by the chart from organizations: list the organizations there" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* With organizations and probe.enabled=false: one endpoint of the ServiceMonitor (or
PodMetricsEndpoint of the PodMonitor) per organization, scraping /probe?target=<name> with the
labels the Probe would give it. */}}
{{- define "oke.organizationEndpoints" -}}
{{- $root := .root -}}
{{- $monitor := .monitor -}}
{{- range $root.Values.organizations }}
- port: http
  path: /probe
  params:
    target:
      - {{ .name | quote }}
  interval: {{ $monitor.interval }}
  scrapeTimeout: {{ $monitor.scrapeTimeout }}
  honorLabels: {{ $monitor.honorLabels }}
  {{- include "oke.monitorAuth" (dict "root" $root "monitor" $monitor) | nindent 2 }}
  relabelings:
    - action: replace
      targetLabel: job
      replacement: openai-key-exporter
    {{- include "oke.organizationRelabelings" $root | nindent 4 }}
    {{- with $monitor.relabelings }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $monitor.metricRelabelings }}
  metricRelabelings:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}
