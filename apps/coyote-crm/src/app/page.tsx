export default function Home() {
  return <main><h1>Coyote</h1></main>;
}
