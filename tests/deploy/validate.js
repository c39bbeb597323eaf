#!/usr/bin/env node
// validate.js: validates Kubernetes objects against the Kubernetes and KEDA schemas of the npm
// packages kubernetes-models and @kubernetes-models/keda (versions in package.json).
// Input on stdin: a JSON array of objects (tests/deploy/check.py renders the kustomizations
// and converts them). Prints one line per object; exit 1 when any object is invalid or of a
// kind the packages do not know. The packages' schemas accept unknown fields (as Kubernetes'
// own OpenAPI does); check.py asserts the fields that matter by name.
"use strict";

const fs = require("fs");

// apiVersion -> the module folder that holds its kinds.
function modulePath(apiVersion, kind) {
  if (apiVersion.startsWith("keda.sh/")) {
    return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  }
  // "v1" (core) or "group/version".
  return `kubernetes-models/${apiVersion}/${kind}`;
}

function main() {
  const objects = JSON.parse(fs.readFileSync(0, "utf8"));
  let bad = 0;
  for (const obj of objects) {
    const name = `${obj.apiVersion} ${obj.kind} ${(obj.metadata || {}).name}`;
    let Model;
    try {
      Model = require(modulePath(obj.apiVersion, obj.kind))[obj.kind];
    } catch (e) {
      Model = undefined;
    }
    if (typeof Model !== "function") {
      console.log(`UNKNOWN  ${name}: no schema for this apiVersion and kind`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`valid    ${name}`);
    } catch (e) {
      console.log(`INVALID  ${name}: ${e.message}`);
      bad++;
    }
  }
  if (objects.length === 0) {
    console.log("validate: no objects given");
    bad++;
  }
  process.exit(bad ? 1 : 0);
}

main();
