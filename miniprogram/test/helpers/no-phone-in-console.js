// Every test: nothing that looks like a mainland phone number (nor a code or token of the fakes) reaches the console.
const LEAK = /1[3-9]\d{9}|tok-|pc:|lc:/;
const METHODS = ['log', 'info', 'warn', 'error', 'debug'];
let spies = [];

beforeEach(() => {
  spies = METHODS.map((m) => jest.spyOn(console, m));
});

afterEach(() => {
  const leaks = [];
  for (const spy of spies) {
    for (const args of spy.mock.calls) {
      const text = args.map((a) => (typeof a === 'string' ? a : safeJson(a))).join(' ');
      if (LEAK.test(text)) leaks.push(text);
    }
    spy.mockRestore();
  }
  expect(leaks).toEqual([]);
});

function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch (e) {
    return String(v);
  }
}
