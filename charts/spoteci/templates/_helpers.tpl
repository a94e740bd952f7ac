{{/* The release's name for its objects: the release name, with "spoteci" unless it has it. */}}
{{- define "spoteci.fullname" -}}
{{- if contains "spoteci" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-spoteci" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "spoteci.labels" -}}
app.kubernetes.io/name: spoteci
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "spoteci.selectorLabels" -}}
app.kubernetes.io/name: spoteci
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The virtual nodes, as a JSON list of {"name", "zone"}: one per zone, or one. */}}
{{- define "spoteci.nodes" -}}
{{- $nodes := list -}}
{{- range .Values.zones -}}
{{- $nodes = append $nodes (dict "name" (printf "%s-%s" $.Values.nodeName .) "zone" .) -}}
{{- end -}}
{{- if not $nodes -}}
{{- $nodes = list (dict "name" .Values.nodeName "zone" "") -}}
{{- end -}}
{{- toJson $nodes -}}
{{- end -}}

{{/* The Lease each node's replicas elect their leader on. */}}
{{- define "spoteci.leaderLease" -}}
{{- printf "spoteci-%s" . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "spoteci.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "spoteci.fullname" .) -}}
{{- end -}}

{{- define "spoteci.credentialsSecret" -}}
{{- default (printf "%s-eci" (include "spoteci.fullname" .)) .Values.eci.existingSecret -}}
{{- end -}}
