// Validates Kubernetes objects of the Gateway API (gateway.networking.k8s.io/v1) and Envoy Gateway
// (gateway.envoyproxy.io/v1alpha1) against their schemas, as published on npm by kubernetes-models
// (tommy351/kubernetes-models-ts: @kubernetes-models/gateway-api 2.0.0 = Gateway API v1.5.1,
// @kubernetes-models/envoy-gateway 2.0.0 = Envoy Gateway v1.7.3; ajv validators generated from the CRDs'
// Go types: required fields, enums, patterns, bounds; not the CRDs' CEL rules, not unknown fields).
// stdin: a JSON array of objects. stdout: one JSON line per object. Exit 1 when any is invalid.
import * as gatewayApi from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1";
import * as envoyGateway from "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1";

const models = {"gateway.networking.k8s.io/v1": gatewayApi, "gateway.envoyproxy.io/v1alpha1": envoyGateway};
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  let invalid = 0;
  for (const object of JSON.parse(input)) {
    const Model = (models[object.apiVersion] || {})[object.kind];
    const result = {apiVersion: object.apiVersion, kind: object.kind, name: object.metadata?.name};
    if (!Model) {
      console.log(JSON.stringify({...result, known: false}));
      continue;
    }
    try {
      new Model(object).validate();
      console.log(JSON.stringify({...result, known: true, ok: true}));
    } catch (error) {
      invalid++;
      const errors = (error.errors || [{instancePath: "", message: String(error)}]).map((e) => `${e.instancePath || "/"} ${e.message}`);
      console.log(JSON.stringify({...result, known: true, ok: false, errors}));
    }
  }
  process.exit(invalid ? 1 : 0);
});
