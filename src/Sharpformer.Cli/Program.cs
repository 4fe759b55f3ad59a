Console.WriteLine("sharpformer");
