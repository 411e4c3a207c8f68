#!/usr/bin/env node
import '../dist/src/cli/ip-shim.js';
