// One call of the Vercel AI SDK against the gateway, as its users write it; prints a JSON
// line of what the SDK returned. Usage: node run.mjs '{"client", "gateway", "model", "mode"}'
// (tests/e2e/test_ai_sdk.py). Modes: text, stream, object, tools.
import { generateText, streamText, Output, tool, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { z } from 'zod';

const args = JSON.parse(process.argv[2]);
const apiKey = 'test-key';
const providers = {
  openai_chat: () => createOpenAI({ baseURL: `${args.gateway}/v1`, apiKey }).chat(args.model),
  openai_responses: () =>
    createOpenAI({ baseURL: `${args.gateway}/v1`, apiKey }).responses(args.model),
  anthropic: () => createAnthropic({ baseURL: `${args.gateway}/v1`, apiKey })(args.model),
  google: () => createGoogleGenerativeAI({ baseURL: `${args.gateway}/v1beta`, apiKey })(args.model),
};
const model = providers[args.client]();
const common = { model, maxRetries: 0, maxOutputTokens: 256 };
let out;
if (args.mode === 'text') {
  const r = await generateText({ ...common, prompt: args.prompt });
  out = { text: r.text, finishReason: r.finishReason, usage: r.usage };
} else if (args.mode === 'stream') {
  const r = streamText({ ...common, prompt: args.prompt });
  const parts = [];
  for await (const delta of r.textStream) parts.push(delta);
  out = { parts, finishReason: await r.finishReason, usage: await r.usage };
} else if (args.mode === 'object') {
  const r = await generateText({
    ...common, prompt: args.prompt,
    output: Output.object({ schema: z.object({ city: z.string(), population: z.number() }) }),
  });
  out = { output: r.output };
} else if (args.mode === 'tools') {
  const calls = [];
  const r = await generateText({
    ...common, prompt: args.prompt, stopWhen: stepCountIs(3),
    tools: {
      get_weather: tool({
        description: "Today's weather in a city.",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => { calls.push(city); return args.forecast; },
      }),
    },
  });
  out = { text: r.text, calls, steps: r.steps.length };
}
console.log(JSON.stringify(out));
