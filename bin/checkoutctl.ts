#!/usr/bin/env node
import { main } from '../src/cli/args.js'

/** checkoutctl: the operator CLI (docs/cli.md). Only hands the command line to src/cli. */
const io = { out: (text: string) => process.stdout.write(text), err: (text: string) => process.stderr.write(text) }
process.exitCode = await main(process.argv.slice(2), process.env, io)
