export * from './fault-injector.js';
export * from './link.js';
