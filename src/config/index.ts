/**
 * Configuration: the command-line layer every CLI uses (flags, environment, JSON file,
 * validated with TypeBox) and the settings schema of `bun run serve`.
 */
export { defineCommand, runCommand } from "./flags.ts";
export { countOrAuto } from "./coerce.ts";
export { FlagError, type FlagErrorCode } from "./errors.ts";
export {
  kebabCase,
  type Command,
  type CommandSpec,
  type FlagSpec,
  type FlagValue,
  type FlagValues,
  type ParsedCommand,
  type ParseOptions,
  type PortRange,
  type ValueSource,
  type IntFlag,
  type NumberFlag,
  type DurationFlag,
  type StringFlag,
  type BoolFlag,
  type EnumFlag,
  type ListFlag,
  type PortRangeFlag,
} from "./spec.ts";
export { serveCommand, serveFlags, workersOf, isModuleAppPath, type ServeConfig } from "./serve.ts";
