{{- define "livemig.labels" -}}
app.kubernetes.io/name: livemig
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "livemig.selectorLabels" -}}
app.kubernetes.io/name: livemig
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "livemig.serviceAccountName" -}}
{{- default (printf "%s-operator" .Release.Name) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "livemig.peering" -}}
{{- if or .Values.operator.peering.enabled (gt (int .Values.operator.replicaCount) 1) -}}
{{ .Values.operator.peering.name }}
{{- end -}}
{{- end -}}
