from geodiff.cli import main

main()
