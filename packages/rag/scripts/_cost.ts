// CPU time of building the map (space + fit) as the engine does, for the source tree given as argv[2]
const root = process.argv[2]!;
const m = await import(`${root}/packages/rag/src/node.ts`);
const index = await m.RagIndex.open({ dir: '/tmp/ragmap2/index', embedding: new m.UseLiteEmbedding() });
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
for (let r = 0; r < 3; r++) {
  const t0 = cpu();
  const w0 = performance.now();
  const engine = new m.RagEngine(index);
  engine.fittedMap();
  console.log(
    `${root}: map built in ${(cpu() - t0).toFixed(0)} ms CPU, ${(performance.now() - w0).toFixed(0)} ms wall`,
  );
}
