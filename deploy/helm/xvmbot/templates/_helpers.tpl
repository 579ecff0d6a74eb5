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

{{/* The bundled NATS's name (StatefulSet, client Service; the headless Service adds
-headless): derived from the fullname, so it is the same whatever the release is called
and follows fullnameOverride. Short enough for a Service name with its suffix. */}}
{{- define "xvmbot.natsName" -}}
{{- printf "%s-nats" (include "xvmbot.fullname" . | trunc 45 | trimSuffix "-") -}}
{{- end -}}

{{- define "xvmbot.natsSelectorLabels" -}}
app.kubernetes.io/name: nats
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end -}}

{{/* The NATS URL: the bundled server's client Service, or the existing cluster. */}}
{{- define "xvmbot.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s:4222" (include "xvmbot.natsName" .) -}}
{{- else if .Values.externalNATS.url -}}
{{- .Values.externalNATS.url -}}
{{- else -}}
{{- fail "set externalNATS.url or nats.enabled: the bot and the worker share work through NATS" -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the NATS users' passwords (keys bot-password, worker-password). */}}
{{- define "xvmbot.natsUsersSecret" -}}
{{- if .Values.natsAuth.existingSecret -}}
{{- if .Values.nats.enabled -}}
{{- fail "natsAuth.existingSecret is for an existing NATS (nats.enabled: false); the bundled NATS reads its users' passwords from the Secret this chart creates" -}}
{{- end -}}
{{- .Values.natsAuth.existingSecret -}}
{{- else if .Values.nats.enabled -}}
{{- printf "%s-users" (include "xvmbot.natsName" .) -}}
{{- else -}}
{{- fail "an existing NATS (nats.enabled: false) needs natsAuth.existingSecret, a Secret with the keys bot-password and worker-password of its users xvm-bot and xvm-worker (docs/nats-permissions.md); or natsAuth.enabled: false with credentials in config.nats" -}}
{{- end -}}
{{- end -}}

{{/* Where each pod finds its role's NATS password. */}}
{{- define "xvmbot.natsPasswordDir" -}}/run/secrets/xvmbot-nats{{- end -}}

{{/* The config file: values.config with the keys the chart owns filled in. */}}
{{- define "xvmbot.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "http" (dict "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) "ops_listen" (printf "0.0.0.0:%d" (int .Values.service.opsPort))) -}}
{{- $nats := deepCopy (default (dict) $cfg.nats) -}}
{{- $_ := set $nats "url" (include "xvmbot.natsURL" .) -}}
{{- if and .Values.nats.enabled (not (hasKey $nats "replicas")) -}}
{{- /* Each stream on every server of the bundled cluster. */ -}}
{{- $_ := set $nats "replicas" (int .Values.nats.replicas) -}}
{{- end -}}
{{- if .Values.natsAuth.enabled -}}
{{- $_ := include "xvmbot.natsUsersSecret" . -}}
{{- /* One config for both roles: each pod says who it is (XVM_NATS_USER) and mounts its own password there. */ -}}
{{- $_ := set $nats "user" "${XVM_NATS_USER}" -}}
{{- $_ := set $nats "password_file" (printf "%s/password" (include "xvmbot.natsPasswordDir" .)) -}}
{{- end -}}
{{- $_ := set $cfg "nats" $nats -}}
{{- if .Values.secrets.vcenters -}}
{{- /* A vCenter without a password of its own reads it from secrets.vcenters, mounted per name. */ -}}
{{- $vcs := list -}}
{{- range $vc := (default (list) $cfg.vcenters) -}}
{{- $vc = deepCopy $vc -}}
{{- if not (or $vc.password $vc.password_file) -}}
{{- $_ := set $vc "password_file" (printf "%s/%s" (include "xvmbot.vcenterPasswordDir" $) $vc.name) -}}
{{- end -}}
{{- $vcs = append $vcs $vc -}}
{{- end -}}
{{- $_ := set $cfg "vcenters" $vcs -}}
{{- end -}}
{{- if .Values.approvalKey.existingSecret -}}
{{- $appr := deepCopy (default (dict) $cfg.approvals) -}}
{{- $_ := set $appr "signing_key_file" (printf "%s/%s" (include "xvmbot.approvalKeyDir" .) .Values.approvalKey.secretKey) -}}
{{- $_ := set $appr "trusted_keys" .Values.approvalKey.publicKeys -}}
{{- $_ := set $cfg "approvals" $appr -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "xvmbot.vcenterPasswordDir" -}}/run/secrets/xvmbot-vcenters{{- end -}}

{{- define "xvmbot.approvalKeyDir" -}}/run/secrets/xvm-approval-key{{- end -}}

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
      {{- if eq .role "bot" }}
      - name: http
        containerPort: {{ $root.Values.service.port }}
        protocol: TCP
      {{- end }}
      - name: ops
        containerPort: {{ $root.Values.service.opsPort }}
        protocol: TCP
    {{- if or $root.Values.env $root.Values.natsAuth.enabled }}
    env:
      {{- if $root.Values.natsAuth.enabled }}
      - name: XVM_NATS_USER
        value: {{ index $root.Values.natsAuth (printf "%sUser" .role) | quote }}
      {{- end }}
      {{- with $root.Values.env }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- end }}
    {{- if or $root.Values.envFrom (and (eq .role "bot") $root.Values.secrets.slack) }}
    envFrom:
      {{- /* The Slack tokens are the bot's alone: a worker pod never holds them. */}}
      {{- if and (eq .role "bot") $root.Values.secrets.slack }}
      - secretRef: {name: {{ $root.Values.secrets.slack | quote }}}
      {{- end }}
      {{- with $root.Values.envFrom }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- end }}
    {{- range $kind := list "startup" "liveness" "readiness" }}
    {{- $p := index $root.Values.probes $kind }}
    {{ $kind }}Probe:
      httpGet: {path: {{ $p.path }}, port: ops}
      periodSeconds: {{ $p.periodSeconds }}
      failureThreshold: {{ $p.failureThreshold }}
      timeoutSeconds: {{ $p.timeoutSeconds }}
    {{- end }}
    resources:
      {{- toYaml $r.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - {name: config, mountPath: /etc/xvmbot, readOnly: true}
      - {name: tmp, mountPath: /tmp}
      {{- if $root.Values.natsAuth.enabled }}
      - {name: nats-auth, mountPath: {{ include "xvmbot.natsPasswordDir" $root }}, readOnly: true}
      {{- end }}
      {{- if $root.Values.secrets.vcenters }}
      - {name: vcenter-passwords, mountPath: {{ include "xvmbot.vcenterPasswordDir" $root }}, readOnly: true}
      {{- end }}
      {{- if and (eq .role "bot") $root.Values.approvalKey.existingSecret }}
      - {name: approval-key, mountPath: {{ include "xvmbot.approvalKeyDir" $root }}, readOnly: true}
      {{- end }}
      {{- range $root.Values.extraSecretMounts }}
      - {name: {{ .name }}, mountPath: {{ .mountPath }}, readOnly: true}
      {{- end }}
volumes:
  - name: config
    secret:
      secretName: {{ include "xvmbot.configSecretName" $root }}
  - name: tmp
    emptyDir: {}
  {{- if $root.Values.natsAuth.enabled }}
  - name: nats-auth
    secret:
      secretName: {{ include "xvmbot.natsUsersSecret" $root }}
      defaultMode: 0400
      # Only this role's password: a bot pod never holds the worker's, nor the reverse.
      items:
        - {key: {{ printf "%s-password" .role }}, path: password}
  {{- end }}
  {{- with $root.Values.secrets.vcenters }}
  - name: vcenter-passwords
    secret:
      secretName: {{ . }}
      defaultMode: 0400
  {{- end }}
  {{- if and (eq .role "bot") $root.Values.approvalKey.existingSecret }}
  - name: approval-key
    secret:
      secretName: {{ $root.Values.approvalKey.existingSecret }}
      defaultMode: 0400
      # The signing key is the bot's alone: a worker pod never mounts it.
      items:
        - {key: {{ $root.Values.approvalKey.secretKey }}, path: {{ $root.Values.approvalKey.secretKey }}}
  {{- end }}
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
{{- with $root.Values.topologySpread }}
{{- if .enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .maxSkew }}
    topologyKey: {{ .topologyKey }}
    whenUnsatisfiable: {{ .whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "xvmbot.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $.role }}
    # Count only the pods of the current rollout, not those being replaced.
    matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end }}
{{- end -}}
