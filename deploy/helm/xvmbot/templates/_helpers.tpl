{{/* Names and labels shared by every object of the chart. */}}
{{- define "xvmbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "xvmbot.fullname" -}}
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

{{- define "xvmbot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "xvmbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "xvmbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xvmbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "xvmbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "xvmbot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "xvmbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The NATS URL: the bundled official chart's service, or the existing cluster. */}}
{{- define "xvmbot.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" .Release.Name -}}
{{- else if .Values.externalNATS.url -}}
{{- .Values.externalNATS.url -}}
{{- else -}}
{{- fail "set externalNATS.url or nats.enabled: the bot and the worker share work through NATS" -}}
{{- end -}}
{{- end -}}

{{/* The config file: values.config with the keys the chart owns filled in. */}}
{{- define "xvmbot.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "http" (dict "listen" (printf "0.0.0.0:%d" (int .Values.service.port))) -}}
{{- $nats := deepCopy (default (dict) $cfg.nats) -}}
{{- $_ := set $nats "url" (include "xvmbot.natsURL" .) -}}
{{- $_ := set $cfg "nats" $nats -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "xvmbot.configSecretName" -}}
{{- default (printf "%s-config" (include "xvmbot.fullname" .)) .Values.existingConfigSecret -}}
{{- end -}}

{{/* The pod spec of one role (bot or worker); called with (dict "root" $ "role" "bot"). */}}
{{- define "xvmbot.podSpec" -}}
{{- $root := .root -}}
{{- $r := index $root.Values .role -}}
serviceAccountName: {{ include "xvmbot.serviceAccountName" $root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $r.terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
containers:
  - name: {{ .role }}
    image: {{ include "xvmbot.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: [{{ .role | quote }}, "--config", "/etc/xvmbot/xvmbot.yaml"]
    ports:
      - name: http
        containerPort: {{ $root.Values.service.port }}
        protocol: TCP
    {{- with $root.Values.env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $root.Values.envFrom }}
    envFrom:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    livenessProbe:
      httpGet: {path: {{ $root.Values.probes.liveness.path }}, port: http}
      periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
      failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
    readinessProbe:
      httpGet: {path: {{ $root.Values.probes.readiness.path }}, port: http}
      periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
      failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
    resources:
      {{- toYaml $r.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - {name: config, mountPath: /etc/xvmbot, readOnly: true}
      - {name: tmp, mountPath: /tmp}
      {{- range $root.Values.extraSecretMounts }}
      - {name: {{ .name }}, mountPath: {{ .mountPath }}, readOnly: true}
      {{- end }}
volumes:
  - name: config
    secret:
      secretName: {{ include "xvmbot.configSecretName" $root }}
  - name: tmp
    emptyDir: {}
  {{- range $root.Values.extraSecretMounts }}
  - name: {{ .name }}
    secret:
      secretName: {{ .secretName }}
  {{- end }}
{{- with $r.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
