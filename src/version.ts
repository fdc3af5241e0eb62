/** The package version (package.json's). In a module of its own so that any folder can read it without importing the package root. */
export const VERSION = "0.1.0";
